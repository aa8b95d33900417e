"""Health vocabulary, in the languages the classifier's templates cover (English, German, French,
Dutch, Spanish, Italian) and Portuguese, matched on folded text (lowercase, no accents).

Broad on purpose: a false REGULATED keeps a prompt on our own pods (costs quality), a missed one
sends health data to a third party (a breach). Words of care alone (doctor, patient, hospital)
count only in pairs. Stems end in \\w{0,16} (bounded, for RE2) so one
entry covers a word's forms ("diagnos" for diagnosed, Diagnose, diagnostiqué, diagnosticado).
German compounds put the condition last ("Brustkrebs", "Typ-2-Diabetes"), so a few German
conditions also match as a word's ending.
"""

from __future__ import annotations

import re2

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

HEALTH = re2.compile(r"\b(?:" + "|".join(_HEALTH + _GERMAN_ENDINGS) + r")\b")
CARE = re2.compile(r"\b(?:" + "|".join(_CARE) + r")\b")


def has_health_data(folded: str) -> bool:
    """A word that is health data, or two words of care."""
    if HEALTH.search(folded):
        return True
    care = CARE.finditer(folded)
    return next(care, None) is not None and next(care, None) is not None
