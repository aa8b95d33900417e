# ruff: noqa: RUF001, E501  (words and names in the scripts people write them in)
"""The fail-closed rule, for the identifiers no catalogue knows, and who a text is about.

The checksum detectors (`_identifiers`) know the formats they were told about. Everything else
that looks like an identifier is decided here: a run of digits (or of letters and digits) of an
identifier's length that no public shape explains, written beside a person or beside a word that
names a personal identifier in any language, is personal data, and REGULATED: a national, tax,
health-insurance, medical-record or member number is what a breach report is about, and the
rule cannot tell those apart from each other, only from what is public.

Public shapes that explain a number: dates and times, amounts (with a currency, or grouped in
thousands), decimals and coordinates, versions and IP addresses, year ranges and lifetimes,
hashes and UUIDs, valid ISBNs and EAN/UPC barcodes, IMEIs, VAT numbers with their country, parcel
numbers (UPS 1Z, GS1 SSCC), phone numbers written as phones, and a number whose own label says
what it is ("order", "invoice", "tracking", "flight", "room", "VAT"...) or that counts something
("followers", "km", "total votes"). A person's name as a number's own label ("Sanne Bakker
(629060)") makes even a short number, or one in a phone's digits, an identifier.

Who a text is about (`person_positions`) is also what makes health words health *data*: a
condition beside a named person, a first-person "I"/"my", a relative or a pronoun, not a
condition discussed in general.

All patterns are RE2 over the normalised text (case kept, for names) or its folded form, and each
candidate is judged on a bounded window, so the cost is linear in the text's length.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
from collections.abc import Iterable, Sequence

import phonenumbers
import re2
from stdnum import ean, isbn, luhn, vatin

from tierlift.classifier._catalogue import identifier_names
from tierlift.classifier._names import gazetteer_positions
from tierlift.classifier._normalise import alternation, fold, normalise

_MIN_DIGITS = 7  # shorter runs are house numbers, postcodes, years, counts
_MIN_NAMED_DIGITS = 6  # right after the identifier's name: "vinnutal 254332"
_MIN_LABELLED_DIGITS = 5  # right after the person's name: "Camille Lefèvre: 3193-3"
_MIN_MIXED_DIGITS = 5  # with letters: "XJ4829173", "A12345678"
_MIN_NAMED_MIXED_DIGITS = 4  # with letters, beside the identifier's name: India's PAN "ABCDE1234F"
_MAX_CHARS = 24  # longer runs are hashes, keys, encodings: other detectors read those
_MAX_CANDIDATES = 256
_LABEL = 28  # a number's own label: this many characters before it
_BEFORE, _AFTER = 100, 60  # how far a person or an identifier word may be from the number


_NOT_WORD = r"[^\pL\pN\pM]"


def _boundary_words(words: Iterable[str]) -> str:
    """An alternation of folded words bounded by anything that is not a letter, digit or mark
    (RE2's \\b is ASCII-only: it never matches beside "é" or "я")."""
    return rf"(?:^|{_NOT_WORD}){alternation(words)}(?:{_NOT_WORD}|$)"


def _folded(words: str) -> list[str]:
    return [fold(normalise(w.strip())) for w in words.split(";") if w.strip()]


# Words that name a personal identifier, beyond the catalogue's names, in the languages people
# write to Tierlift: the generic ones ("member number", "insurance no.") that name no country.
_ID_WORDS = _folded(
    # English
    "id no; id number; id nr; id #; id card; id code; identity; identification; national id; national number;"
    "national insurance; national identity; personal id; personal number; personal code; personal identity;"
    "citizen id; citizen number; resident id; residence permit; resident permit; residency number; social security;"
    "social insurance; ssn; tax id; tax number; tax code; tax file number; tax reference; taxpayer; passport;"
    "licence number; license number; licence no; license no; driver's license; drivers license; driving licence;"
    "voter id; birth number; birth certificate; pension number; member id; member no; member number; membership number;"
    "membership no; member #; subscriber id; subscriber number; policy number; policy no; policy #; insurance number;"
    "insurance no; insurance id; insurance card; insured; health card; health insurance; health number; health id;"
    "medical record; medical record number; medical id; medical card; mrn; patient id; patient no; patient number;"
    "patient #; hospital number; employee id; employee number; employee no; staff id; staff number; student id;"
    "student number; enrolment number; enrollment number; beneficiary; medicare; medicaid; nhs; ohip; nhi; ihi;"
    "chi number; group number; plan id; claim number; case id; client id; client number; customer id;"
    # German, French, Spanish, Italian, Dutch, Portuguese
    "ausweis; ausweisnummer; personalausweis; steuernummer; steuer-id; versicherungsnummer; versichertennummer;"
    "versicherten-nr; krankenversicherung; krankenkasse; mitgliedsnummer; patientennummer; personalnummer;"
    "sozialversicherungsnummer; kundennummer; carte vitale; securite sociale; numero fiscal; numero d'assure;"
    "numero d'adherent; numero de patient; numero de dossier; dossier medical; mutuelle; carte d'identite;"
    "numero de securite sociale; numero de afiliacion; numero de socio; numero de poliza; poliza; tarjeta sanitaria;"
    "historia clinica; cedula; expediente; asegurado; afiliado; documento de identidad; seguridad social;"
    "numero di tessera; tessera sanitaria; cartella clinica; numero di polizza; assistito; codice fiscale;"
    "carta d'identita; polisnummer; verzekerdennummer; patientnummer; lidnummer; zorgverzekering; klantnummer;"
    "burgerservicenummer; numero de utente; cartao nacional de saude; cartao de cidadao; prontuario; beneficiario;"
    "numero do beneficiario; carteirinha; plano de saude;"
    # Polish, Turkish, Russian, Ukrainian, Greek, Czech, Hungarian, Nordic, Romanian
    "pesel; dowod osobisty; numer dowodu; numer ubezpieczenia; nfz; numer pacjenta; legitymacja; numer klienta;"
    "kimlik; kimlik no; kimlik numarasi; tc no; t.c. no; vergi no; vergi numarasi; sgk; sigorta; sigorta no;"
    "hasta no; hasta numarasi; uye no; uye numarasi; pasaport; sosyal guvenlik; sigorta numarasi; hasta dosya no;"
    "паспорт; снилс; инн; полис; омс; номер полиса; номер паспорта; страховой номер; медицинская карта;"
    "удостоверение; личности; пациент; рнокпп; ідентифікаційний код;"
    "αμκα; αφμ; ταυτοτητα; αριθμος ταυτοτητας; διαβατηριο; αριθμος μητρωου;"
    "rodne cislo; cislo pojistence; pojistovna; obcansky prukaz; taj szam; szemelyi szam; adoazonosito;"
    "personnummer; henkilotunnus; fodselsnummer; cpr-nummer; cod numeric personal; carte de identitate;"
    # Arabic, Hebrew, Hindi, Indonesian, Vietnamese, Filipino, Swahili, Thai
    "رقم الهوية; الهوية الوطنية; هوية; رقم وطني; الرقم الوطني; الرقم القومي; جواز السفر; جواز سفر; رقم التامين;"
    "رقم المريض; رقم الملف; بطاقة; الاقامة; اقامة; رقم الضمان الاجتماعي;"
    "کد ملی; کد ملي; شماره ملی; کارت ملی; شناسنامه; بیمه; شماره بیمه; شناختی کارڈ; قومی شناختی;"  # Persian, Urdu
    "תעודת זהות; מספר זהות; ת.ז; דרכון; קופת חולים; מספר מבוטח;"
    "आधार; पैन; पहचान; पहचान पत्र; पासपोर्ट; बीमा; रोगी; मरीज; सदस्य; मतदाता; राशन कार्ड;"
    "nik; ktp; npwp; bpjs; nomor induk; kartu keluarga; nomor peserta; cccd; cmnd; can cuoc; so can cuoc;"
    "chung minh nhan dan; bao hiem; so bao hiem; philhealth; sss; umid; kitambulisho; nida; บัตรประชาชน;"
    # health insurers and public health schemes: the number beside one is its member's
    "aetna; cigna; humana; unitedhealthcare; united healthcare; anthem; kaiser permanente; bcbs; blue cross;"
    "blue shield; tricare; molina; centene; oscar health; aok; techniker krankenkasse; barmer; dak; ikk; bkk;"
    "axa; allianz; bupa; cpam; ameli; mgen; harmonie mutuelle; sanitas; adeslas; mapfre; dkv; zilveren kruis;"
    "vgz; menzis; ohip; ramq; msp; medibank; hcf; nhif; mutualite; mutualidad; cassa mutua; inps; inail; sus;"
    "unimed; amil; bradesco saude; hapvida; luxmed; medicover; sgk; омс; дмс; 医保卡; 健保卡; 건강보험공단"
)
# In scripts written without spaces, matched anywhere.
_ID_WORDS_UNSPACED = _folded(
    "身份证; 身份證; 身分證; 证件号; 證件號; 社保; 医保; 醫保; 护照; 護照; 病历号; 病历; 病歷; 住院号; 会员号; 會員號;"
    "税号; 纳税人识别号; 驾驶证; 驾照; 保险号; 学号; 工号; 社会保障号;"
    "マイナンバー; 個人番号; 保険証; 被保険者; 保険者番号; 記号番号; 旅券; パスポート; 免許証; カルテ; 患者番号; 診察券;"
    "会員番号; 社員番号; 基礎年金番号; 住民票;"
    "주민등록번호; 주민번호; 외국인등록번호; 여권; 건강보험; 보험증; 환자번호; 회원번호; 운전면허; 사번; 학번"
)
# A number's own label that says it is public.
_PUBLIC_LABELS = _folded(
    "order; order no; order number; order #; invoice; invoice no; bill; receipt; ticket; ticket no; tracking;"
    "tracking number; parcel; package; shipment; consignment; waybill; awb; booking; reservation; confirmation;"
    "reference; ref; sku; item; part; part no; product; model; serial; serial no; serial number; lot; batch; version;"
    "build; release; commit; issue; pr; pull request; port; line; row; page; chapter; section; article; flight;"
    "room; gate; seat; train; bus; route; isbn; issn; ean; upc; gtin; barcode; doi; pmid; arxiv; patent; case law;"
    "transaction; txn; payment reference; quote; estimate; job; build no; run; pipeline; request; trace; span;"
    "phone; tel; telephone; mobile; cell; fax; call; whatsapp; extension; ext;"
    "vat; vat no; vat number; vat id; vat reg; vat registration; company number; company no; company registration;"
    "ust-idnr; ust-id; umsatzsteuer-id; umsatzsteuer-identifikationsnummer; handelsregister; n° tva; tva;"
    "numero de tva; partita iva; p. iva; cif; btw; btw-nummer; kvk; mwst; vat nr;"
    "bestellung; bestellnummer; rechnung; rechnungsnummer; sendungsnummer; paket; commande; facture; colis;"
    "pedido; factura; envio; ordine; fattura; spedizione; bestelling; factuur; zending; encomenda; fatura;"
    "zamowienie; faktura; przesylka; siparis; fatura; kargo; заказ; счет; посылка; трек"
)
# What a number counts, right after it.
_UNITS = _folded(
    "followers; subscribers; views; likes; users; people; visitors; customers; downloads; copies; units; items;"
    "votes; residents; inhabitants; km; kilometres; kilometers; miles; m; kg; tons; tonnes; bytes; kb; mb; gb; tb;"
    "times; years; days; hours; seconds; steps; points; tokens; words; pages; rows; records; lines; requests;"
    "metres; meters; feet; ft; inches; calories; kcal; litres; liters; grams; g; mg; ml; euro; people; times;"
    "dollars; euros; pounds; usd; eur; gbp; jpy; yen; won; rupees; inr; cny; chf; km2; hectares; acres; sq;"
    "impressions; clicks; sessions; visits; pageviews; transactions; orders; shares; streams; plays; listeners;"
    "readers; viewers; employees; participants; students; cases; deaths; births; samples; packets; cycles;"
    "iterations; epochs; parameters; params; hits; events; messages; tweets; posts; comments; installs; signups;"
    "ms; hz; khz; mhz; ghz; rpm; watts; kw; kwh; mw; volts; pixels; px; frames; barrels; bottles; tickets;"
    "yards; goals; assists; rebounds; wins; appearances; laps; runs; strikeouts; medals"
)


@functools.cache
def _patterns() -> tuple[re2._Regexp, re2._Regexp, re2._Regexp]:
    """(identifier words anywhere, a public label ending right before a number, a unit right
    after one): built on first use, the catalogue's names being read from python-stdnum."""
    id_words = _boundary_words([*_ID_WORDS, *identifier_names()])
    return (
        re2.compile(f"{id_words}|{alternation(_ID_WORDS_UNSPACED)}"),
        re2.compile(
            rf"(?:^|{_NOT_WORD}){alternation(_PUBLIC_LABELS)}(?: (?:is|was|ist|est|es|e|wordt))?[^\pL]{{0,6}}$"
        ),
        re2.compile(rf"^[\s:=#.,()\-]{{0,3}}(?:\pL{{2,12}} )?{alternation(_UNITS)}(?:{_NOT_WORD}|$)"),
    )


def names_an_identifier(folded: str) -> bool:
    """Whether a word that names a personal identifier is anywhere in the folded text."""
    return _patterns()[0].search(folded) is not None


# --- who a text is about -----------------------------------------------------------------------

_HONORIFIC = re2.compile(
    r"(?:^|[^\pL])(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame|Herr|Frau|Hr|Fr|Mme|Mlle|Monsieur|Madame|Sr|Sra|Srta"
    r"|Señor|Señora|Don|Doña|Sig|Sig\.ra|Signor|Signora|Dhr|Mevr|Pan|Pani|Bay|Bayan|Sayın|Господин|Госпожа"
    r"|Г-н|Г-жа)\.?\s+\p{Lu}"
)
_NAME_SUFFIX = re2.compile(r"\p{Han}{1,3}(?:さん|様|さま|氏|先生|女士|小姐|君)|\p{Hangul}{2,4}\s?(?:씨|님)")
# The small words inside names: "Jan de Vries", "Ludwig van Beethoven", "Omar bin Laden"
_PARTICLES = r" (?:de|van|der|den|von|zu|da|di|del|della|la|le|du|dos|das|do|bin|binti|ibn|al|el|ter|ten|y|e) "
# "John Smith", "Hans Müller", "Иван Петров", "Smith, John": capitalised words in a row, none a
# word that starts a title, a heading or a sentence more often than it names someone.
_NAME_PAIR = re2.compile(
    r"(?:^|[^\pL\pN])(\p{Lu}\p{Ll}+(?:(?:[-' ]|" + _PARTICLES + r")\p{Lu}\p{Ll}+|, \p{Lu}\p{Ll}+)"
    r"(?:[-' ]\p{Lu}\p{Ll}+)?)(?:[^\pL]|$)"
)
_NOT_NAMES = frozenset(
    w.lower()
    for w in (  # noqa: SIM905 (a list of words reads best as words)
        "The This That These Those There Here What When Where Which Who Why How Please Dear Hello Hi Hey Thanks Thank"
        " Order Invoice Ticket Tracking Reference Case Account Total Date Time Page Version Build Release Model Item"
        " Product Number Street Road Avenue United States Kingdom New York North South East West Central Union"
        " National International Global General Federal Republic Bank Street Company Group Inc Ltd University School"
        " College Hospital Department Ministry Office Service Services Center Centre Institute Club Team Project"
        " January February March April May June July August September October November December Monday Tuesday"
        " Wednesday Thursday Friday Saturday Sunday Summary Details Note Notes Subject Title Name Address Phone Email"
        " Status Type Code Data Table Figure Chapter Section Part Step Task Question Answer Example Input Output"
        " Customer Client Patient Member Employee User Admin Support Sales Team Report Review Test Result Results"
        " Total Amount Price Cost Fee Payment Balance Due Paid Tax Vat Net Gross Sum Count Id Ref No Nr"
        " Black Friday Christmas Easter Happy Birthday Good Morning Best Regards Kind Best Regards Yours Sincerely"
        " Der Die Das Ein Eine Le La Les Un Une El Los Las Il Lo Gli Het De Een Os As Um Uma Mit Und Avec Et Con"
        " Bitte Sehr Geehrte Geehrter Liebe Lieber Madame Monsieur Estimado Estimada Gentile Beste Caro Cara"
        " Amazon Google Apple Microsoft Visa Mastercard Paypal Python Java Linux Windows Android Iphone Github"
        " Sql Json Html Api Http Https Url Excel Word Powerpoint Zoom Slack Teams Tierlift Openai"
        # the words a question starts with: "Is Hodgkin's lymphoma curable?"
        " Is Are Was Were Does Do Did Can Could Should Would Will Shall May Might Must Has Have Had Why"
        # what a business is called by: "Pizzeria Da Mario", "Sunrise Dental", "Bäckerei Schmidt"
        " Pizzeria Restaurant Ristorante Trattoria Cafe Café Bistro Bar Pub Grill Diner Kitchen Bakery Bäckerei"
        " Boulangerie Panaderia Hotel Hostel Motel Shop Store Market Salon Spa Studio Gym Boutique Deli Pharmacy"
        " Apotheke Farmacia Pharmacie Dental Clinic Klinik Praxis Garage Motors Auto Taxi Plumbing Electric"
        " Travel Tours Bank Insurance Solutions Consulting Partners Associates Holdings Corp Gmbh Ag Sa Srl Bv"
    ).split()
)

_PERSON_WORDS = _folded(
    # first person, relatives, pronouns that point at one person; a label naming a person
    "i; i'm; i've; i'd; me; my; mine; myself; he; she; him; her; his; hers; himself; herself;"
    "mother; father; mom; mum; dad; son; daughter; wife; husband; partner; brother; sister; child; baby; grandmother;"
    "grandfather; grandma; grandpa; aunt; uncle; cousin; fiance; fiancee; boyfriend; girlfriend; neighbour; neighbor;"
    "colleague; coworker; boss; employee; tenant; patient; client; customer; member; applicant; policyholder;"
    "paciente; patiente; patient; pazient; pazientin; paziente; pacjent; pacjentka; patientin;"
    "ich; mir; mich; ihm; ihn; mein; meine; meinem; meinen; meiner; er; ihr; ihre; ihrem; ihren; sein; seine; seinem; seinen;"
    "mutter; vater; sohn; tochter; frau; mann; ehemann; ehefrau; bruder; schwester; oma; opa; kollege; kollegin;"
    "je; j'ai; moi; mon; ma; mes; elle; lui; mere; pere; fils; fille; epouse; mari; frere; soeur; collegue;"
    "yo; mi; mis; conmigo; ella; madre; padre; hijo; hija; esposa; esposo; marido; hermano; hermana; abuela; abuelo;"
    "io; mio; mia; miei; mie; lei; lui; mamma; papa; figlio; figlia; moglie; fratello; sorella; nonna; nonno;"
    "ik; mijn; mij; hij; zij; moeder; vader; zoon; dochter; vrouw; echtgenoot; broer; zus; oma; opa;"
    "eu; meu; minha; meus; minhas; ele; ela; mae; pai; filho; filha; esposa; marido; irmao; irma; avo;"
    "mojej; mojego; mojemu; moim; moja; ja; moj; moje; mam; mnie; mi; ona; jego; jej; matka; ojciec; syn; corka; zona; maz; brat; siostra;"
    "ben; benim; bana; bende; annem; babam; oglum; kizim; esim; kardesim;"
    "я; мой; моя; мое; мои; мне; меня; у меня; он; она; его; ее; мама; папа; мать; отец; сын; дочь; жена; муж;"
    "брат; сестра; бабушка; дедушка; моей; моего; моему; моим; мою; сестры; брата; мамы; отца; сына; дочери;"
    "жены; мужа; бабушки; дедушки; ему; ей; него; нее;"
    "انا; لدي; عندي; ابني; ابنتي; زوجي; زوجتي; امي; ابي; اخي; اختي; المريض; المريضة;"
    "मैं; मेरा; मेरी; मेरे; मुझे; मुझको; उसे; उसका; उसकी; उसके; वह; मेरी माँ; मेरे पिता; मरीज; रोगी;"
    "saya; aku; ibu saya; ayah saya; suami; istri; toi; cua toi; me toi; bo toi; ako; ko; akin; mimi; wangu;"
    # a verb that says someone in particular, where the pronoun is dropped or never written
    "was diagnosed; got diagnosed; been diagnosed; was prescribed; been prescribed; was admitted; was hospitalised;"
    "was hospitalized; is being treated; was treated; suffers from; is suffering; has been taking;"
    "ho; sono; prendo; soffro; mi hanno; sto prendendo; e stato ricoverato; e stata ricoverata; e in cura;"
    "tengo; estoy; sufro; tomo; padezco; me diagnosticaron; me han; me recetaron; fue diagnosticado; fue diagnosticada;"
    "tenho; estou; sofro; fui diagnosticado; fui diagnosticada; foi diagnosticado; foi diagnosticada; esta gravida;"
    "j'ai; je suis; je prends; a ete diagnostique; a ete diagnostiquee; est sous; souffre;"
    "habe; bin; nehme; leide; wurde diagnostiziert; ist an; wurde festgestellt; bei ihm; bei ihr;"
    "heb; ben; neem; is opgenomen; werd gediagnosticeerd; lijdt;"
    "jestem; biore; choruje; lecze sie; zdiagnozowano; cierpie; choruje na; trafil; trafila;"
    "oldum; kullaniyorum; hastayim; teshis kondu; tedavi goruyorum; ameliyat oldu;"
    "болею; болен; больна; принимаю; поставили диагноз; лежу в больнице; у него; у нее; у неё;"
    "اعاني; يعاني; تعاني; اتناول; تم تشخيصي; تم تشخيصه; تم تشخيصها;"
    "मुझे; हूं; हूँ; ले रहा; ले रही; पीड़ित"
)
_PERSON_WORDS_UNSPACED = _folded(
    "我; 他; 她; 我的; 妈妈; 爸爸; 母亲; 父亲; 儿子; 女儿; 妻子; 丈夫; 老公; 老婆; 患者; 病人;"
    "私; 僕; 俺; わたし; 彼; 彼女; 母; 父; 夫; 妻; 息子; 娘; 祖母; 祖父;"
    "저는; 나는; 제가; 내가; 저의; 나의; 제; 그는; 그녀; 어머니; 아버지; 엄마; 아빠; 남편; 아내; 아들; 딸; 환자;"
    "診断され; と言われ; 飲んでいます; 通院して; 入院して; 入院した; 治療中; 患って; 患い;"
    "진단을 받았; 진단받; 복용 중; 복용하고; 치료 중; 치료를 받; 앓고; 입원했"
)


@functools.cache
def _person_word_pattern() -> re2._Regexp:
    return re2.compile(f"{_boundary_words(_PERSON_WORDS)}|{alternation(_PERSON_WORDS_UNSPACED)}")


# "i" as code writes a variable: an operator or a bracket beside it, or a loop's "for i"
# (each group starts where the person words' pattern starts its match, the character before)
_CODE_I = re2.compile(
    rf"((?:^|{_NOT_WORD})i)\s?(?:[=<>+*/%\[\])]|-[-=]|!=)|\bfor(?: ?\()?(?: (?:let|var|int|auto|const|size_t))?( i)\b"
    rf"|[=<>+*/%-]\s?({_NOT_WORD}i)(?:{_NOT_WORD}|$)"
)


def name_positions(normalised: str) -> list[int]:
    """Where a person is named: an honorific and a name, a name with a CJK or Korean honorific,
    or capitalised words in a row that are not a title's or a heading's."""
    found = [m.start() for m in _HONORIFIC.finditer(normalised)]
    found += [m.start() for m in _NAME_SUFFIX.finditer(normalised)]
    for m in _NAME_PAIR.finditer(normalised):
        words = [w.strip(",").lower() for w in m.group(1).replace("-", " ").replace("'", " ").split() if w[0].isupper()]
        if not any(w in _NOT_NAMES for w in words):
            found.append(m.start(1))
    return sorted(found)


def person_positions(normalised: str, folded: str) -> list[int]:
    """Where the text points at a person: a name, or a word that points at one ("my", "she",
    "my mother", "patient"), in the languages above."""
    pointed = [m.start() for m in _person_word_pattern().finditer(folded)]
    if pointed and _CODE_I.search(folded):  # "for (i = 0; i < n; i++)": a loop's variable, not "I"
        code = {next(m.start(g) for g in (1, 2, 3) if m.group(g) is not None) for m in _CODE_I.finditer(folded)}
        pointed = [p for p in pointed if p not in code]
    return sorted(name_positions(normalised) + gazetteer_positions(normalised, folded) + pointed)


def near(positions: list[int], start: int, end: int, before: int = _BEFORE, after: int = _AFTER) -> bool:
    i = bisect.bisect_left(positions, start - before)
    return i < len(positions) and positions[i] <= end + after


# --- the fail-closed rule ----------------------------------------------------------------------

# Runs of letters and digits joined by separators, each part with a digit, and a short letter
# part joined before or after ("AB-1234567", "131052-308T"); "AS 80333" is a state and a ZIP code
_CANDIDATE = re2.compile(
    r"(?:^|[^A-Za-z0-9])((?:[A-Z]{1,3}-)?[A-Za-z0-9]*\d[A-Za-z0-9]*"
    r"(?:(?:[ ./-]|\s?/\s?|\s-\s)[A-Za-z0-9]*\d[A-Za-z0-9]*){0,8}(?:-[A-Z]{1,2}\b)?)"
)
_DATE_SHAPES = re2.compile(
    r"\d{4}[-./]\d{1,2}[-./]\d{1,2}(?:[ T]\d{1,2}(?:[:.]\d{2}){0,2}Z?)?|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}"
)
_THOUSANDS = re2.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d{1,3}(?:\.\d{3})+(?:,\d+)?|\d{1,3}(?:'\d{3})+")
_DECIMAL = re2.compile(r"-?\d+[.,]\d+")
_IPV4 = re2.compile(r"(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}")
_YEAR_RANGE = re2.compile(r"(?:1[5-9]|20)\d{2}\s?[-/]\s?(?:1[5-9]|20)\d{2}")  # 1939-1945, a life: 1775-1817
# A version or a build: three or more dotted groups, a short first one and a minor number of one
# or two digits inside ("120.0.6099.109", "3.12.1"); ids written with dots have longer groups
# inside ("62.496.674.35", "12.345.678")
_VERSION = re2.compile(r"v?\d{1,3}(?:\.\d{1,6})*\.\d{1,2}(?:\.\d{1,6})+")
_HEX = re2.compile(r"(?i)[0-9a-f]{12,}")
_TRACKING = re2.compile(r"(?i)1Z[0-9A-Z]{16}")
_CURRENCY_NEAR = re2.compile(r"[$€£¥₹₩₽]|(?i:\b(?:usd|eur|gbp|chf|jpy|inr|cny|aud|cad)\b)")


def _compact_date(digits: str) -> bool:
    """yyyymmdd or ddmmyyyy, a real date: a timestamp or a date written without separators."""
    for year, month, day in ((digits[:4], digits[4:6], digits[6:8]), (digits[4:8], digits[2:4], digits[:2])):
        try:
            when = dt.date(int(year), int(month), int(day))
        except ValueError:
            continue
        if 1900 <= when.year <= 2100:
            return True
    return False


def _public_shape(token: str, text: str, start: int, end: int) -> bool:
    """Shapes that only public numbers have: a date, a time, an amount, a decimal, an IP
    address, a version, a year range, a hash, a phone number written as one, a parcel or book
    number."""
    digits = "".join(ch for ch in token if ch.isdigit())
    compact = "".join(ch for ch in token if ch.isalnum())
    if (
        _DATE_SHAPES.fullmatch(token)
        or _DECIMAL.fullmatch(token)
        or _IPV4.fullmatch(token)
        or _YEAR_RANGE.fullmatch(token)
        or _VERSION.fullmatch(token)
        or _TRACKING.fullmatch(compact)
        or text[start - 1 : start] == "+"
        or (_is_phone(token) and _CONTACT.search(fold(text[max(0, start - _BEFORE) : end + _AFTER])))
        or _AREA_CODE.search(text[max(0, start - 7) : start])
    ):
        return True
    if _THOUSANDS.fullmatch(token) and ("," in token or _CURRENCY_NEAR.search(text[max(0, start - 6) : end + 6])):
        return True
    if _CURRENCY_NEAR.search(text[max(0, start - 4) : start]) or _CURRENCY_NEAR.search(text[end : end + 5]):
        return True
    if _HEX.fullmatch(compact) and any(ch.isalpha() for ch in compact) and len(compact) >= 16:
        return True
    if len(compact) == len(digits) == 8 and _compact_date(digits):
        return True
    if len(compact) == len(digits) >= 14 and _compact_date(digits[:8]):
        return True  # 20240307101500: a timestamp
    if len(compact) == len(digits) == 15 and luhn.is_valid(digits) and _is_imei(token, text, start):
        return True  # a phone's IMEI, "35-209900-176148-1": a device's, not a person's
    if compact[:2].isalpha() and compact[2:].isdigit() and len(compact) >= 10 and vatin.is_valid(compact):
        return True  # a company's VAT number, its country first ("FR40303265045"): on every invoice
    if compact.isdigit() and len(compact) == 18 and compact.startswith("00") and ean.is_valid(compact):
        return True  # a GS1 parcel number (SSCC)
    return compact.isdigit() and len(compact) == 13 and compact[:3] in ("978", "979") and isbn.is_valid(compact)


_IMEI = re2.compile(r"(?i)\b(?:imei|meid)\b")


def _is_imei(token: str, text: str, start: int) -> bool:
    """Grouped as IMEIs are printed (2-6-6-1), or named IMEI shortly before."""
    groups = [len(g) for g in re2.split(r"[ .-]+", token)]
    return groups == [2, 6, 6, 1] or _IMEI.search(text[max(0, start - _BEFORE) : start]) is not None


_AREA_CODE = re2.compile(r"\(\d{2,5}\)\s?$|\(0\)\s?$")  # (426)650-5834, +49 (0)1090 362032
# A word for a phone, or an email address beside it: contact details, not an identifier
_CONTACT = re2.compile(
    _boundary_words(
        _folded(
            "phone; tel; telephone; call; mobile; cell; text me; whatsapp; fax; ring; telefon; handy; mobil; telephone;"
            "portable; telefono; movil; celular; cellulare; telefoon; mobiel; telemovel; telefonu; телефон; hatif; هاتف;"
            "फोन; मोबाइल"
        )
    )
    + "|"
    + alternation(["电话", "電話", "手机", "携帯", "전화", "휴대폰"])
    + r"|[\w.+-]@[\w-]+\."
)


def _reads_as_phone(token: str, text: str, start: int, end: int, named: bool) -> bool:
    """A number the phone detector took for a phone, read as one here too: beside contact
    details (a word for a phone, an email address); or, unless an identifier's name is beside
    it, written in a phone's groups (no lone check digit or pair at the end: "044908504-2" and
    "4409-1182-33" are ids)."""
    if _CONTACT.search(fold(text[max(0, start - _BEFORE) : end + _AFTER])):
        return True
    groups = [len(g) for g in re2.split(r"[ .-]+", token)]
    # a phone ends in a group of three or more digits, or in pairs ("06 12 34 56 78", "079 123 45
    # 67"): a lone pair after longer groups ("4409-1182-33") is how record numbers are written
    ends_as_phone = groups[-1] > 2 or groups[-2:] == [2, 2]
    return not named and len(groups) > 1 and groups[-1] > 1 and ends_as_phone


def _is_phone(token: str) -> bool:
    """Written as a phone number is: in groups, of a length and in a range some country issues
    (which many identifiers also are: only beside a word for a phone does it explain one)."""
    token = token.split("x")[0]  # an extension: 703-755-9189x56459
    if not 9 <= sum(ch.isdigit() for ch in token) <= 13:
        return False
    for region in ("US", "GB", "DE", "FR", "IN"):
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(token, region)):
                return True
        except phonenumbers.NumberParseException:
            continue
    return False


# A person's name as a number's label: "Sanne Bakker (629060)", "Иван Петров: 840 691 5831", a
# name and a number in the cells of a row or the columns of a listing
_NAME_LABEL = re2.compile(r"(\p{Lu}\p{Ll}+(?:[-' ]\p{Lu}\p{Ll}+){1,3})(?::[ ]?|[ ]?\([ ]?|\t[ ]?|[ ]?\|[ ]?|[ ]{2,})$")


def _labelled_by_name(normalised: str, start: int) -> bool:
    m = _NAME_LABEL.search(normalised[max(0, start - _LABEL - 20) : start])
    return m is not None and not any(w.lower() in _NOT_NAMES for w in re2.split(r"[-' ]", m.group(1)))


def unexplained_identifier(
    normalised: str,
    folded: str,
    persons: list[int],
    phones: Sequence[tuple[int, int]] = (),
) -> bool:
    """A run that looks like an identifier, is not explained as public, and stands beside a
    person or a word naming an identifier. `folded` is `fold(normalised)` (aligned with it);
    `phones` are the spans the phone detector read as phone numbers (CONFIDENTIAL, not ids)."""
    id_pattern, label_pattern, unit_pattern = _patterns()
    id_words: list[int] | None = None
    for n, m in enumerate(_CANDIDATE.finditer(normalised)):
        if n == _MAX_CANDIDATES:
            break
        token = m.group(1).rstrip(" ./-")
        start, end = m.start(1), m.start(1) + len(token)
        compact = "".join(ch for ch in token if ch.isalnum())
        digits = sum(ch.isdigit() for ch in compact)
        letters = len(compact) - digits
        if len(compact) > _MAX_CHARS or digits < (_MIN_NAMED_MIXED_DIGITS if letters else _MIN_LABELLED_DIGITS):
            continue
        if letters > 2 and not compact.isupper():
            continue  # words with numbers in them: "covid19", "mp3player", "Windows11Pro"
        label = folded[max(0, start - _LABEL) : start]
        if label_pattern.search(label):
            continue  # "order 48213379", "tracking: 9400..."
        if _public_shape(token, normalised, start, end):
            continue
        if unit_pattern.match(folded[end : end + 16]):
            continue  # "150000000 followers"
        if id_words is None:
            id_words = [m.start() for m in id_pattern.finditer(folded)]
        by_name = _labelled_by_name(normalised, start)
        if any(p_start <= start < p_end or start <= p_start < end for p_start, p_end in phones) and _reads_as_phone(
            token, normalised, start, end, named=by_name or near(id_words, start, end)
        ):
            continue
        if digits < _MIN_DIGITS and not letters:  # five or six digits: only right after a name of the id or the person
            if by_name or (digits >= _MIN_NAMED_DIGITS and near(id_words, start, end, before=_LABEL, after=0)):
                return True
            continue
        if near(id_words, start, end):
            return True
        if near(persons, start, end) and (not letters or digits >= _MIN_MIXED_DIGITS):
            return True
    return False
