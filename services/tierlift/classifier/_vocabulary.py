# ruff: noqa: E501  (words and names in the scripts people write them in)
"""Health vocabulary, matched on folded text (lowercase, no accents): English, German, French,
Dutch, Spanish, Italian, Portuguese, Polish, Turkish, Russian, Arabic, Hindi, Chinese, Japanese
and Korean.

A health word is health *data* only about someone (`_personal.person_positions` says where a
text points at a person): "is diabetes common in older adults?" is public, "my mother has
diabetes" is not. Broad on purpose: a false REGULATED keeps a prompt on our own pods (costs
quality), a missed one sends health data to a third party (a breach). Words of care alone
(doctor, patient, hospital) count only in pairs. Stems end in \\w{0,16} (bounded, for RE2) so one
entry covers a word's forms ("diagnos" for diagnosed, Diagnose, diagnostiqué, diagnosticado).
German compounds put the condition last ("Brustkrebs", "Typ-2-Diabetes"), so a few German
conditions also match as a word's ending; conditions and drugs nobody listed are caught by how
medicine names them ("-itis", "-osis", "-pathy", "-ectomy"; "-statin", "-pril", "-mab").
"""

from __future__ import annotations

import re2

from tierlift.classifier._normalise import fold, normalise

# Words of care: a doctor, a patient, a hospital. One alone is common in harmless text ("what
# does a medical secretary do?", a novel's hospital scene), so it takes two to count.
_CARE = [
    r"patient\w{0,6}", r"paciente\w{0,2}", r"pazient\w{0,4}", r"medical", r"medic[ao]\w{0,2}", r"medicine",
    r"clinic\w{0,6}", r"klinik\w{0,6}", r"clinique\w{0,2}", r"kliniek\w{0,2}", r"clinica\w{0,2}",
    r"hospital\w{0,6}", r"hopital\w{0,4}", r"ospedal\w{0,4}", r"krankenhaus\w{0,6}", r"ziekenhuis\w{0,4}",
    r"symptom\w{0,6}", r"sintom\w{0,6}", r"sympto\w{0,6}", r"therap\w{0,8}", r"terapi\w{0,6}", r"treatment",
    r"tratamiento", r"traitement", r"trattament\w{0,2}", r"behandlung\w{0,2}", r"behandeling\w{0,2}",
    r"tratamento", r"arzt\w{0,4}", r"arztin\w{0,2}", r"medecin\w{0,2}", r"dokter", r"huisarts", r"doctor",
    r"nurse", r"krankenschwester", r"infirmier\w{0,2}", r"enfermer[oa]\w{0,1}", r"infermier[ea]", r"verpleegkundige",
    r"in cura", r"en tratamiento", r"sous traitement", r"in behandlung", r"onder behandeling", r"health",
    r"anxiety", r"ansiedad", r"anxiete", r"ansia", r"angst", r"ansiedade", r"emergency room", r"er", r"urgences",
    r"urgencias", r"notaufnahme", r"pronto soccorso", r"spoedeisende hulp", r"pharmac\w{0,4}", r"apotheke",
    r"suffers? from", r"suffering from", r"sufre de", r"padece de", r"souffre d'?\w{0,3}", r"leidet an",
    r"soffre di", r"lijdt aan", r"sofre de",
    r"gesundheit\w{0,4}", r"sante", r"salud", r"salute", r"gezondheid", r"saude",
]  # fmt: skip
# Words that are health data on their own: diagnoses and conditions, prescriptions and drugs,
# pregnancy, care that names what it treats.
_HEALTH = [
    r"diagnos\w{0,16}", r"prescri\w{0,16}", r"medicament\w{0,6}", r"medikament\w{0,6}", r"medicijn\w{0,4}",
    r"medication\w{0,1}", r"farmac[oi]", r"farmaco\w{0,2}", r"medicamento\w{0,1}", r"surgery", r"cirugia",
    r"chirurgi\w{0,4}", r"cirurgia", r"icd-?10", r"mrn", r"doctor'?s note", r"arztbrief", r"krankgeschrieben",
    r"krankschreibung", r"arbeitsunfahig\w{0,6}", r"arret maladie", r"baja medica", r"ziekmelding", r"sick leave",
    r"sick note", r"blood (?:test|pressure|sugar)", r"blutdruck", r"blutzucker", r"tension arterielle",
    r"presion arterial", r"pressione (?:arteriosa|alta|bassa)", r"bloeddruk", r"pressao alta", r"hypertension",
    r"hipertension", r"ipertensione", r"hypertonie", r"hipertensao", r"biops\w{0,6}", r"chemo\w{0,12}",
    r"quimioterapia", r"radiother\w{0,8}", r"radioterapi\w{0,2}", r"oncolog\w{0,8}", r"onkolog\w{0,8}",
    r"psychiat\w{0,8}", r"psiquiat\w{0,8}", r"psichiat\w{0,8}", r"psycholog\w{0,8}", r"psicolog\w{0,8}",
    r"mental health", r"sante mentale", r"salud mental", r"salute mentale", r"saude mental", r"psychisch\w{0,4}",
    r"geestelijke gezondheid", r"enfermedad\w{0,2}", r"enfermo\w{0,1}", r"enferma\w{0,1}", r"maladie\w{0,1}",
    r"malattia\w{0,1}", r"malato", r"malata", r"krankheit\w{0,2}", r"erkrank\w{0,8}", r"ziekte\w{0,2}",
    r"doenca\w{0,1}", r"disease", r"illness", r"ricetta medica", r"ordonnance", r"receta medica", r"receita medica",
    r"arztliches rezept", r"hospitalis\w{0,8}", r"hospitaliz\w{0,8}", r"ricoverat[oa]", r"ingresad[oa]",
    r"opgenomen in het ziekenhuis", r"internad[oa]",
    # conditions
    r"hiv", r"vih", r"aids", r"sida", r"hepati\w{0,6}", r"epatite", r"cancer\w{0,2}", r"cancro", r"krebs\w{0,4}",
    r"kanker", r"tumou?r\w{0,2}", r"tumeur\w{0,1}", r"tumore", r"diabet\w{0,8}", r"insulin\w{0,2}",
    r"asthm\w{0,4}", r"asma", r"epilep\w{0,8}", r"epiless\w{0,4}", r"epilepsi\w{0,2}", r"seizure\w{0,1}",
    r"convulsion\w{0,2}", r"depress\w{0,8}", r"depresion", r"depressao", r"anxiety disorder", r"angststorung\w{0,2}",
    r"trouble anxieux", r"trastorno\w{0,2}", r"bipolar\w{0,4}", r"schizophren\w{0,6}", r"esquizofren\w{0,4}",
    r"schizofren\w{0,4}", r"dementi\w{0,4}", r"demenz", r"alzheimer\w{0,2}", r"parkinson\w{0,2}",
    r"sclero\w{0,6}", r"sklerose", r"stroke", r"schlaganfall", r"avc", r"ictus", r"beroerte", r"cardiac",
    r"cardiaque", r"cardiac[ao]", r"herzinfarkt", r"infarct\w{0,4}", r"infarto", r"arrhythmi\w{0,2}",
    r"pregnan\w{0,6}", r"schwanger\w{0,8}", r"enceinte", r"grossesse", r"embarazad\w{0,2}", r"embarazo",
    r"incinta", r"gravidanza", r"zwanger\w{0,6}", r"gravida", r"gravidez", r"miscarriage", r"fehlgeburt",
    r"fausse couche", r"aborto", r"abortion", r"avortement", r"abtreibung", r"abortus", r"std", r"sti",
    r"disabilit\w{0,4}", r"discapacidad", r"behinderung", r"disabilita", r"deficiencia", r"rehab\w{0,8}",
    r"addiction", r"adiccion", r"dipendenza", r"verslaving", r"overdose", r"sobredosis", r"allerg\w{0,6}",
    r"alergi\w{0,4}", r"tuberculos\w{0,4}", r"tuberkulose", r"covid\w{0,4}", r"pneumonia", r"pneumonie",
    r"neumonia", r"polmonite", r"longontsteking", r"lungenentzundung", r"infection", r"infeccion", r"infezione",
    r"infectie", r"infektion", r"obesit\w{0,4}", r"adipositas", r"anorexi\w{0,4}", r"bulimi\w{0,4}",
    r"autis\w{0,6}", r"adhd", r"tdah", r"ptsd", r"burn-?out", r"suicid\w{0,6}", r"selbstmord", r"zelfmoord",
    r"self-harm", r"fracture\w{0,1}", r"fractura", r"frattura", r"knochenbruch", r"migraine", r"migrana",
    r"emicrania", r"migrane", r"arthritis", r"artritis", r"artrite", r"leukemi\w{0,2}", r"leukam\w{0,2}",
    r"leucemi\w{0,2}", r"lymphom\w{0,2}", r"linfoma", r"dialys\w{0,2}", r"dialisi", r"dialisis", r"transplant\w{0,6}",
    r"trasplante", r"trapianto", r"antidepress\w{0,8}", r"antibiotic\w{0,2}", r"antibiotik\w{0,2}",
    r"antibiotique\w{0,1}", r"antibiotico\w{0,1}", r"chemotherapie", r"methadon\w{0,1}", r"opioid\w{0,2}",
    r"suikerziekte", r"heart attack", r"crise cardiaque", r"ataque al corazon", r"attacco di cuore", r"hartaanval",
    r"eating disorder", r"essstorung\w{0,2}", r"trouble\w{0,1} alimentaire\w{0,1}", r"trastorno alimentario",
    r"eetstoornis", r"chlamydi\w{0,2}", r"gonorrh\w{0,4}", r"syphilis", r"sifilis", r"herpes", r"hpv",
    r"hemophili\w{0,2}", r"haemophili\w{0,2}", r"hamophilie", r"hemofilia", r"metformin\w{0,1}", r"xanax",
    r"prozac", r"sertralin\w{0,1}", r"fluoxetin\w{0,1}", r"lithium", r"methotrexat\w{0,1}", r"adderall", r"ritalin",
    r"oxycodon\w{0,1}", r"morphin\w{0,1}", r"warfarin\w{0,1}", r"insuline", r"insulina", r"autismo",
]  # fmt: skip
# German compounds: the condition is the word's end ("Brustkrebs", "Lungenentzündung").
_GERMAN_ENDINGS = [r"\w{2,20}(?:krebs|diabetes|erkrankung|entzundung|infektion|tumor|therapie|diagnose|sucht)"]

# More conditions, tests and care in English, the languages above.
_HEALTH += [
    r"lupus", r"crohn'?s?", r"colitis", r"c[oe]liac", r"psoriasis", r"eczema", r"cystic fibrosis", r"sickle cell",
    r"thyroid\w{0,6}", r"hypothyroid\w{0,6}", r"gout", r"glaucoma", r"cataract\w{0,1}", r"kidney (?:disease|failure|stones?)",
    r"renal failure", r"cirrhosis", r"copd", r"emphysema", r"sepsis", r"endometriosis", r"pcos", r"infertil\w{0,6}",
    r"ivf", r"erectile dysfunction", r"incontinence", r"fibromyalgia", r"chronic fatigue", r"long covid", r"ocd",
    r"panic (?:attacks?|disorder)", r"insomnia", r"sleep apn(?:o)?ea", r"concussion", r"paraly\w{0,6}", r"amputat\w{0,6}",
    r"an(?:a)?emi[ac]", r"thalass(?:a)?emia", r"tested positive", r"positive for", r"hba1c", r"cholesterol", r"mri",
    r"ct scan", r"x-ray", r"ultrasound", r"mammogram", r"biopsy", r"blood (?:work|results?)", r"lab results?",
    r"viral load", r"cd4", r"psa (?:level|test)", r"white blood cell\w{0,1}", r"heart (?:disease|failure|condition)",
    r"high blood pressure", r"mental illness", r"breakdown", r"relapse\w{0,1}", r"in remission", r"terminal\w{0,1}",
    r"palliative", r"hospice", r"icu", r"intensive care", r"wheelchair", r"crutches", r"prosthe\w{0,6}",
    # how a clinical note writes a finding: what a patient presents with, a test's outcome
    r"(?:chest|back|lower back|abdominal|stomach|pelvic|joint|knee|hip|neck|ear|tooth|nerve|chronic) pain",
    r"present(?:s|ed|ing) with", r"complain(?:s|ed|ing) of", r"troponin", r"creatinine", r"ecg", r"ekg",
    r"(?:came|come|comes|coming) back (?:positive|negative|abnormal|elevated|high|low|clear)",
    r"(?:test|tests|result|results|scan|swab|screening)s? (?:was|were|is|are) (?:positive|abnormal|elevated)",
    # a chart's shorthand: diagnosis, prescription, history of; conditions written as initials
    r"dx", r"rx", r"hx of", r"s/p", r"chf", r"dvt", r"afib", r"a-fib", r"gerd", r"uti",
]  # fmt: skip
# How medicine names conditions, procedures and drugs: an unlisted one still has its ending.
_MEDICAL_FORMS = [
    r"\w{4,20}(?:oses?|osi|ose[ns])",  # French, German, Italian, Dutch: mucoviscidose, Thrombose, artrosi
    r"\w{3,20}(?:pathie|patia|ectomie|ectomia|tomie|plastie|scopie|emie|amie|aemie)",
    r"(?:atteinte?|souffrant|erkrankt|affett[oa]|afectad[oa]|acometid[oa]|affected|afflicted|stricken) (?:de|d'|an|da|por|by|with)",
    r"\w{3,20}(?:itis|osis|aemia|emia|opathy|plegia|algia|ectomy|otomy|ostomy|oplasty|oscopy|penia|trophy|sclerosis)",
    r"\w{3,20}(?:mab|tinib|pril|sartan|olol|statin|prazole|tidine|cillin|mycin|cycline|floxacin|conazole|ciclovir"
    r"|cyclovir|navir|oxetine|triptan|gliptin|gliflozin|azepam|azolam|parin|dronate|lukast|profen|codone|morphone"
    r"|semide|thiazide|dipine|zosin|setron|formin)",
]
# Words ending like a medical term that are not one.
_NOT_MEDICAL = re2.compile(
    r"\b(?:osmosis|symbiosis|metamorphosis|apotheosis|hypnosis|mitosis|meiosis|psychosis-free|empathy|sympathy"
    r"|grandiose|verbose|glucose|lactose|sucrose|fructose|cellulose|bellicose|morose|otiose|purpose|purposes"
    r"|suppose|propose|compose|expose|impose|dispose|oppose|repose|decompose|close|closes|those|whose|chose|chooses"
    r"|chose|choses|prose|rose|roses|pose|poses|dose|doses|nose|noses|hose|lose|loses|arose"
    r"|autre chose|quelque chose|grosse|grosses|bose|lose|hose|dosi|cosi|rosi|cose|spose|sposi"
    r"|apathy|antipathy|telepathy|homeopathy|osteopathy|atrophy-free|trophy|microtrophy|academia|bohemia|polemia"
    r"|anthology|myalgia-free|nostalgia|ameliorate|gastronomy|anatomy|dichotomy|lobotomy-style|phlebotomy-free"
    r"|appendectomy-free|notomy)\b"
)
# Other languages, as people write them (a trailing "*" allows the word's endings).
_HEALTH_OTHER = [
    # Polish
    "cukrzyc*", "nowotw*", "rak", "raka", "rakiem", "depresj*", "nerwic*", "nadcisnieni*", "zawal*", "udar*", "astm*", "zapaleni*",
    "gruzlic*", "demencj*", "padaczk*", "schizofreni*", "bialaczk*", "chemioterapi*", "radioterapi*",
    "diagnoz*", "zdiagnozowan*", "szpital*", "lekarstw*", "leki", "recepta", "recepte", "recepty", "w ciazy",
    "ciaz*", "poronieni*",
    "leczeni*", "insulin*", "dializ*", "chorob*", "chory", "chora", "choruje", "cierpi na",
    # Turkish (dotless i folded to i)
    "diyabet*", "seker hastaligi", "kanser*", "tumor*", "depresyon*", "anksiyete*", "tansiyon*", "kalp kriz*",
    "astim*", "hepatit*", "verem*", "tuberkuloz*", "inme*", "demans*", "epilepsi*", "sizofreni*", "losemi*",
    "kemoterapi*", "radyoterapi*", "ameliyat*", "teshis*", "tani kondu", "hastane*", "ilac*", "recete*", "hamile*",
    "dusuk yap*", "tedavi*", "insulin*", "diyaliz*", "hastalig*", "hastaliklari",
    # Russian
    "диабет*", "рак", "рака", "раком", "раке", "онколог*", "опухол*", "депресси*", "тревожн*", "гипертони*", "инфаркт*", "инсульт*", "астм*",
    "вич", "спид", "гепатит*", "туберкул*", "деменци*", "альцгеймер*", "паркинсон*", "эпилепси*", "шизофрени*",
    "лейкоз*", "лейкеми*", "химиотерапи*", "облучени*", "диагноз*", "диагностир*", "госпитализ*",
    "больниц*", "лекарств*", "препарат*", "рецепт*", "беремен*", "выкидыш*", "лечени*", "лечит*", "инсулин*",
    "диализ*", "болезн*", "заболевани*", "болен", "больна", "болеет",
    # Arabic
    "السكري", "سكري", "مرض السكر", "سرطان", "السرطان", "ورم", "اكتئاب", "الاكتئاب", "قلق", "ضغط الدم", "نوبة قلبية",
    "جلطة", "ربو", "الربو", "الايدز", "فيروس نقص المناعة", "التهاب الكبد", "السل", "سكتة دماغية", "الزهايمر",
    "باركنسون", "صرع", "الصرع", "فصام", "ابيضاض", "علاج كيميائي", "العلاج الكيميائي", "اشعاعي", "جراحة", "عملية جراحية",
    "تشخيص", "شخص", "تم تشخيص", "مستشفى", "المستشفى", "دواء", "ادوية", "الدواء", "وصفة طبية", "حامل", "حمل",
    "اجهاض", "علاج", "العلاج", "انسولين", "الانسولين", "غسيل الكلى", "مرض", "المرض", "مريض", "مريضة", "مصاب", "مصابة",
    # Hindi
    "मधुमेह", "डायबिटीज", "शुगर", "कैंसर", "ट्यूमर", "अवसाद", "डिप्रेशन", "चिंता विकार", "उच्च रक्तचाप", "ब्लड प्रेशर",
    "हृदय रोग", "दिल का दौरा", "अस्थमा", "दमा", "एड्स", "एचआईवी", "हेपेटाइटिस", "टीबी", "तपेदिक", "स्ट्रोक",
    "डिमेंशिया", "मिर्गी", "कीमोथेरेपी", "सर्जरी", "ऑपरेशन", "निदान", "अस्पताल", "दवा", "दवाई", "दवाइयां", "गर्भवती",
    "गर्भपात", "इलाज", "उपचार", "इंसुलिन", "डायलिसिस", "बीमारी", "रोग", "बीमार",
    "पॉजिटिव", "पॉज़िटिव", "नेगेटिव", "जांच रिपोर्ट", "टेस्ट रिपोर्ट",
]  # fmt: skip
# Chinese, Japanese and Korean, written without spaces between words: matched anywhere.
_HEALTH_UNSPACED = [
    "糖尿病", "癌症", "肿瘤", "腫瘤", "抑郁症", "抑郁", "憂鬱症", "焦虑症", "焦慮症", "高血压", "高血壓", "心脏病", "心臟病",
    "哮喘", "艾滋病", "愛滋病", "乙肝", "肝炎", "结核", "結核", "中风", "中風", "痴呆", "阿尔茨海默", "帕金森", "癫痫",
    "癲癇", "精神分裂", "双相", "白血病", "化疗", "化療", "放疗", "放療", "手术", "手術", "确诊", "確診", "诊断", "診斷",
    "患有", "患了", "得了", "住院", "服用", "处方", "處方", "药物", "藥物", "怀孕", "懷孕", "流产", "流產", "病历", "病歷",
    "病情", "治疗", "治療", "胰岛素", "胰島素", "透析", "生病", "肺癌", "胃癌", "乳腺癌", "肝癌",
    "がん", "癌", "うつ病", "鬱病", "不安障害", "高血圧", "心臓病", "喘息", "エイズ", "結核", "脳卒中", "認知症",
    "アルツハイマー", "パーキンソン", "てんかん", "統合失調症", "双極性障害", "抗がん剤", "化学療法", "放射線治療",
    "診断", "入院", "処方", "妊娠", "流産", "インスリン", "持病", "通院", "病気", "薬を飲",
    "당뇨병", "당뇨", "폐암", "위암", "유방암", "간암", "대장암", "갑상선암", "암 진단", "암 환자", "암환자", "암 투병",
    "종양", "우울증", "불안장애", "공황장애", "고혈압", "심장병", "천식", "에이즈", "간염", "결핵", "뇌졸중", "치매",
    "알츠하이머", "파킨슨", "뇌전증", "조현병", "양극성", "백혈병", "항암", "화학요법", "방사선 치료", "수술", "진단",
    "입원", "복용", "처방", "임신", "유산", "치료", "인슐린", "투석", "질환", "병원",
    # a test's result: positive, a laboratory test, a nucleic-acid (PCR) test, a confirmed diagnosis
    "阳性", "陽性", "化验", "化驗", "核酸检测", "核酸檢測", "양성", "확진", "血液検査", "血液检查", "血液檢查", "혈액검사",
    "혈액 검사",
]  # fmt: skip


def _alternation(words: list[str]) -> str:
    return "|".join(re2.escape(fold(normalise(w))) for w in words)


_BOUND = r"[^\pL\pN\pM]"
_STEMS = [w.rstrip("*") for w in _HEALTH_OTHER if w.endswith("*")]
_WORDS = [w for w in _HEALTH_OTHER if not w.endswith("*")]
# One pattern per kind: RE2 refuses a single pattern this size (each \pL is a large class).
# Arabic writes "and", "with", "for" as letters joined before the word ("بالسكري", "with diabetes")
_PROCLITICS = "[\u0648\u0641\u0628\u0644\u0643]{1,2}"  # و ف ب ل ك
_ARABIC = [w for w in _WORDS if any("\u0600" <= ch <= "\u06ff" for ch in w)]
_HEALTH_PATTERNS = [
    re2.compile(r"\b(?:" + "|".join(_HEALTH + _GERMAN_ENDINGS) + r")\b"),
    re2.compile(r"\b(?:" + "|".join(_MEDICAL_FORMS) + r")\b"),
    re2.compile(rf"(?:^|{_BOUND})(?:(?:{_alternation(_STEMS)})[\pL\pM]{{0,8}}|{_alternation(_WORDS)})(?:{_BOUND}|$)"),
    re2.compile(_alternation(_HEALTH_UNSPACED)),
    re2.compile(rf"(?:^|{_BOUND}){_PROCLITICS}(?:{_alternation(_ARABIC)})(?:{_BOUND}|$)"),
]
CARE = re2.compile(r"\b(?:" + "|".join(_CARE) + r")\b")


def health_positions(folded: str) -> list[int]:
    """Where a word that is health data stands, and where the second of two words of care does."""
    found = [
        m.start()
        for pattern in _HEALTH_PATTERNS
        for m in pattern.finditer(folded)
        if not _NOT_MEDICAL.fullmatch(m.group().strip())
    ]
    care = [m.start() for m in CARE.finditer(folded)]
    found += care[1:]
    return sorted(found)
