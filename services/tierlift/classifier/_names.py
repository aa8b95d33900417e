# ruff: noqa: RUF001, E501, SIM905  (names in the scripts people write them in, as words)
"""People named where capital letters do not mark a name, or where one word alone names them.

`_personal.name_positions` finds names by their capitals ("Maria Kowalska") and by honorifics
("田中さん", "김민수 씨"). That misses:

- a given name written alone ("Olivia's test came back positive", "Priya takes insulin"): a
  common given name, capitalised, counts as a person;
- Chinese, written without capitals or spaces ("王芳患有高血压"): a common surname and one or two
  characters, right before a word that only a person's name stands before (患有 "suffers from",
  确诊 "was diagnosed", 的检测 "'s test"), so "方法" or "高血压" are never taken for names;
- Hindi ("सुनीता शर्मा"): a word before a common surname; Arabic ("أحمد علي"): a common given
  name before another word.

Lists of the most common names are a gazetteer, as named-entity recognisers keep: a name not on
them is still found by the other rules. All patterns are RE2, linear in the text.
"""

from __future__ import annotations

import functools

import re2

from tierlift.classifier._normalise import alternation, fold, normalise

# Given names common across the languages people write to Tierlift, none also an everyday
# word or a place ("Victoria", "Georgia", "Paris", "Will", "Grace" are left out; in Arabic, the
# names that are also nouns: "نور" light, "أمل" hope).
_GIVEN_NAMES = (
    "Olivia Emma Amelia Ava Mia Sophia Sophie Isabella Emily Emilia Evelyn Abigail Ella Chloe Lily Zoe Hannah"
    " Hanna Anna Anne Maria Marie Mary Sarah Sara Laura Julia Lucia Lucía Elena Clara Claire Alice Alicia"
    " Camille Chiara Giulia Francesca Valentina Martina Paula Carmen Rosa Ana Beatriz Inês Ines Lena Leonie Lea"
    " Léa Manon Louise Ingrid Astrid Sanne Fleur Femke Agnieszka Katarzyna Małgorzata Zofia Elif Zeynep Ayşe Fatma"
    " Emine Olga Tatiana Natalia Irina Svetlana Anastasia Ekaterina Yuki Sakura Aiko Priya Ananya Aisha Fatima"
    " Amira Layla Leila Noor Yasmin Mariam Maryam Chidi Amara Thandiwe Nia Jennifer Jessica Ashley Amanda"
    " Stephanie Nicole Rachel Rebecca Megan Lauren Samantha Katherine Catherine Karen Susan Linda Barbara"
    " Patricia Elizabeth Margaret Helen Dorothy Sandra Donna Michelle Kimberly Lisa Heather Liam Noah Oliver"
    " Elijah James William Benjamin Lucas Henry Alexander Michael Ethan Daniel Jacob Sebastian Aiden Owen"
    " Samuel Matthew Joseph David John Luke Thomas Charles Christopher Andrew Joshua Ryan Nathan Jonathan Kevin"
    " Brian Eric Steven Timothy Jason Jeffrey Gary Richard Robert Edward Peter Paul George Harry Oscar Arthur"
    " Leo Hugo Jules Mathis Théo Lukas Jonas Felix Maximilian Moritz Niklas Tobias Sven Lars Erik Johan"
    " Mateo Matteo Alessandro Lorenzo Giuseppe Francesco Marco Luca Antonio Alejandro Javier Diego Carlos Pablo"
    " Miguel Juan José Jose Pedro João Joao Tiago Rafael Gabriel Bruno Piotr Krzysztof Tomasz Paweł Michał"
    " Mehmet Mustafa Ahmet Emre Burak Ivan Dmitri Dmitry Sergei Alexei Andrei Vladimir Hiroshi Takeshi Kenji"
    " Haruto Wei Arjun Rahul Rohan Vikram Aditya Sanjay Mohammed Mohamed Muhammad Ahmed Ahmad Omar Youssef"
    " Yusuf Hassan Hussein Ibrahim Khalid Tariq Kwame Chinedu Tunde Sipho"
).split()

# Chinese surnames (the most common, in simplified and traditional writing), less those that
# are everyday words at the start of one (高 "high", 方 "square", 白 "white", 金 "gold"...).
_SURNAMES_HAN = (
    "王 李 张 張 刘 劉 陈 陳 杨 楊 黄 黃 赵 趙 吴 吳 周 徐 孙 孫 朱 胡 郭 何 罗 羅 郑 鄭 梁 谢 謝 宋 唐 许 許 韩 韓 冯 馮 邓 鄧 曹 彭 曾 肖 董 袁 潘 蒋 蔣 蔡 余 杜"
    " 叶 葉 程 苏 蘇 魏 吕 呂 丁 任 沈 姚 卢 盧 姜 崔 钟 鍾 谭 譚 汪 范 廖 贾 賈 韦 邹 孟 熊 秦 邱 尹 薛 阎 段 侯 陶 贺 顾 郝 龚 邵 钱 錢 覃 戴 莫 孔 汤"
).split()
# What only a person's name stands right before: suffers from, was diagnosed, takes, 's test
_AFTER_A_NAME_HAN = (
    "患有 患了 得了 被诊断 被診斷 被确诊 被確診 确诊 確診 诊断出 診斷出 正在服用 每天服用 服用 长期服用 住院 做了手术 做了手術 的核酸 的检测 的檢測 的检查 的檢查 的化验 的化驗 的病 的血"
    " 的诊断 的診斷 的体检 的體檢 的病历 的病歷 的身份证 的身份證 的证件 的證件 的医保 的醫保"
).split()

_SURNAMES_HINDI = (
    "शर्मा वर्मा कुमार कुमारी सिंह गुप्ता पटेल यादव जैन मिश्रा तिवारी पांडे पाण्डेय चौधरी खान अग्रवाल"
    " श्रीवास्तव मेहता शाह रेड्डी नायर दास बनर्जी मुखर्जी चटर्जी राव जोशी कपूर मल्होत्रा ठाकुर चौहान शुक्ला"
    " त्रिपाठी दुबे सक्सेना देवी"
).split()
_GIVEN_NAMES_ARABIC = (
    "محمد أحمد احمد محمود مصطفى علي عمر عثمان خالد يوسف حسن حسين إبراهيم ابراهيم عبدالله عبدالرحمن"
    " سعيد كريم طارق سامي ياسر وليد هشام ماجد فيصل سلمان فاطمة عائشة مريم زينب خديجة سارة ليلى رنا سلمى"
    " ياسمين هند نورة رقية آمنة"
).split()

_ARABIC_WORD = r"\p{Arabic}{2,}"
_DEVANAGARI_WORD = r"[\p{Devanagari}]{2,}"


@functools.cache
def _patterns() -> tuple[re2._Regexp, re2._Regexp]:
    """(given names, capitalised, on the normalised text; the other scripts' names, on the
    folded text), built on first use."""
    given = re2.compile(r"(?:^|[^\pL\pN\pM])(" + alternation(_GIVEN_NAMES) + r")(?:'s|’s)?(?:[^\pL\pN\pM]|$)")
    folded = [fold(normalise(w)) for w in _GIVEN_NAMES_ARABIC]
    others = re2.compile(
        "|".join(
            [
                f"(?:{alternation(_SURNAMES_HAN)})\\p{{Han}}{{1,2}}{alternation(_AFTER_A_NAME_HAN)}",
                f"(?:^|[^\\pL\\pM]){_DEVANAGARI_WORD} {alternation(_SURNAMES_HINDI)}(?:[^\\pL\\pM]|$)",
                f"(?:^|[^\\pL\\pM]){alternation(folded)} {_ARABIC_WORD}",
            ]
        )
    )
    return given, others


def gazetteer_positions(normalised: str, folded: str) -> list[int]:
    """Where a common given name (capitalised), or a Chinese, Hindi or Arabic name written as
    those are, stands."""
    given, others = _patterns()
    found = [m.start(1) for m in given.finditer(normalised)]
    if not normalised.isascii():
        found += [m.start() for m in others.finditer(folded)]
    return found
