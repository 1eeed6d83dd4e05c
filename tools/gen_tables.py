#!/usr/bin/env python3
"""Generate core/src/normalize/tables.rs (country, currency, US/CA region and gender tables).

The generated Rust file holds plain `pub(crate) static` slices, each sorted by key so the
Rust side can look entries up with `binary_search_by`. Data comes from `pycountry`
(ISO 3166-1 countries, ISO 3166-2 subdivisions of US and CA, ISO 4217 currencies) plus the
hand-written alias lists below.

Rerun (from the repository root; Python 3.11, standard library + pycountry):

    python3 -m venv /tmp/gen-venv
    /tmp/gen-venv/bin/pip install 'pycountry==26.2.16'
    /tmp/gen-venv/bin/python tools/gen_tables.py            # rewrites core/src/normalize/tables.rs
    /tmp/gen-venv/bin/python tools/gen_tables.py --check    # exit 1 if the file is stale

Every run also cross-checks the capi-param-builder vectors in
../shared/fixtures/official-sdk-vectors.jsonl when that file exists (override with
--vectors PATH, disable with --vectors ''); the check never changes the output, it only
fails when a vector is neither covered by the tables nor listed as a deliberate skip below.

A newer pycountry may add, rename or drop entries: rerun, read the diff, commit both.

LOOKUP KEY form (the Rust side must compute the same key from user input):
    Unicode-lowercase -> NFKD decomposition -> drop combining marks -> keep only ASCII a-z.
    e.g. "Côte d'Ivoire" -> "cotedivoire", "Curaçao" -> "curacao", "Åland Islands" ->
    "alandislands". (NFD gives identical keys for every source string; the script asserts it.)
"""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from importlib import metadata
from pathlib import Path

import pycountry

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "core" / "src" / "normalize" / "tables.rs"
DEFAULT_VECTORS = REPO.parent / "shared" / "fixtures" / "official-sdk-vectors.jsonl"
VECTOR_SDK = "capi-param-builder"


def lookup_key(s: str) -> str:
    """Unicode-lowercase, decompose, drop combining marks, keep ASCII a-z only."""
    decomposed = unicodedata.normalize("NFKD", s.lower())
    no_marks = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    key = "".join(ch for ch in no_marks if "a" <= ch <= "z")
    # Sanity: canonical-only decomposition must give the same key for our source data.
    nfd = unicodedata.normalize("NFD", s.lower())
    assert "".join(ch for ch in nfd if "a" <= ch <= "z") == key, (s, key)
    return key


# --------------------------------------------------------------------------------------
# 1. Countries
# --------------------------------------------------------------------------------------

# Aliases beyond pycountry's name / common_name / official_name. Written as human text;
# lookup_key() is applied to each. Value: ISO 3166-1 alpha-2 (any case).
COUNTRY_ALIASES: dict[str, list[str]] = {
    "gb": ["UK", "Great Britain", "Britain", "England", "Scotland", "Wales",
           "Northern Ireland", "The United Kingdom"],
    "us": ["USA", "US", "America", "United States of America", "United States",
           "The United States", "U.S.A.",
           "United States America"],  # from the capi-param-builder vectors
    "nl": ["Holland", "The Netherlands", "Netherlands"],
    "kr": ["South Korea", "Republic of Korea"],
    "kp": ["North Korea", "DPRK"],
    "ru": ["Russia"],
    "vn": ["Vietnam"],
    "ir": ["Iran"],
    "sy": ["Syria"],
    "la": ["Laos", "Lao PDR"],
    "bo": ["Bolivia"],
    "ve": ["Venezuela"],
    "tz": ["Tanzania"],
    "md": ["Moldova"],
    "cz": ["Czechia", "Czech Republic"],
    "ci": ["Ivory Coast", "Cote d'Ivoire"],
    "tr": ["Turkey", "Turkiye"],
    "mk": ["Macedonia", "North Macedonia",
           # former ISO name, from the capi-param-builder vectors
           "Macedonia, the former Yugoslav Republic of"],
    "mm": ["Burma"],
    "sz": ["Eswatini", "Swaziland"],
    "cv": ["Cape Verde", "Cabo Verde"],
    "va": ["Vatican", "Vatican City", "Vatican City State", "Holy See"],
    "ps": ["Palestine", "Palestinian Territories"],
    "tw": ["Taiwan"],
    "bn": ["Brunei"],
    "fm": ["Micronesia"],
    # "congo" alone is ambiguous between the two Congos; resolved to the Republic of the
    # Congo (cg), which is what ISO 3166-1 itself calls "Congo". The DRC has its own keys.
    "cg": ["Congo", "Congo-Brazzaville", "Republic of the Congo", "Congo Republic"],
    "cd": ["DRC", "DR Congo", "Democratic Republic of the Congo",
           "Democratic Republic of Congo", "Congo-Kinshasa"],
    "ae": ["UAE", "Emirates"],
    "sa": ["KSA", "Saudi"],
    "kn": ["Saint Kitts", "St Kitts", "St Kitts and Nevis"],
    "lc": ["St Lucia", "Saint Lucia"],
    # Other widely used English short names.
    "ba": ["Bosnia", "Bosnia-Herzegovina"],
    "ag": ["Antigua"],
    "tt": ["Trinidad"],
    "gm": ["The Gambia"],
    "bs": ["The Bahamas"],
    "tl": ["East Timor"],
    "cn": ["PRC", "Mainland China"],
    "mo": ["Macau"],
    "ie": ["Republic of Ireland", "Eire"],
    "vc": ["Saint Vincent", "St Vincent", "St Vincent and the Grenadines"],
    "sh": ["Saint Helena", "St Helena"],
    "pm": ["St Pierre and Miquelon"],
    "bl": ["St Barthelemy", "St Barts", "St Barths"],
    "mf": ["Saint Martin", "St Martin"],
    "sx": ["Sint Maarten", "St Maarten"],
    "st": ["Sao Tome"],
    "fk": ["Falkland Islands", "Falklands"],
    "cc": ["Cocos Islands", "Keeling Islands"],
    "gs": ["South Georgia"],
    "sj": ["Svalbard"],
    "tf": ["French Southern and Antarctic Lands"],
    "bq": ["Bonaire", "Caribbean Netherlands"],
    "vi": ["US Virgin Islands", "United States Virgin Islands"],
    "um": ["US Minor Outlying Islands"],
    "pn": ["Pitcairn Islands"],
}

# Keys that collide between sources and how they were resolved: key -> winning alpha-2.
# The script fails on any collision that is not listed here. (None occur with pycountry
# 26.2.16: "congo" is claimed only by pycountry's CG name and the alias above.)
RESOLVED_COUNTRY_CONFLICTS: dict[str, str] = {}

# Non-code keys of 2-3 letters look like codes, so each must be allowed explicitly
# (and must not be any country's alpha-2 / alpha-3 code).
SHORT_ALIAS_ALLOW = {"uk", "uae", "ksa", "drc", "prc"}

# Deliberately NOT added (ambiguous or not an ISO 3166-1 entity):
#   "korea"         -> kr or kp
#   "virginislands" -> vi or vg
#   "guinea" is pycountry's GN name and stays; "newguinea" etc. are not added
#   "kosovo"        -> "xk" is a user-assigned code, absent from ISO 3166-1 / pycountry
#   "republicofchina" -> politically loaded; "taiwan" covers the common case

# capi-param-builder country vectors (nodejs, git b0b6f0b, countryUtil.test.js) whose
# expected value is NOT what our table yields for the input's lookup key, or whose input is
# not a country name at all. Key: lookup_key(input) -> why it is skipped.
# Every other vector with a 2-letter expected value is covered by the tables: either the
# key already comes from pycountry/aliases, or it was added above ("United States America",
# "Macedonia, the former Yugoslav Republic of").
VECTOR_COUNTRY_SKIPPED: dict[str, str] = {
    # Wrong outputs of the reference's "truncate to 2 letters" fallback:
    "uk": 'input "U.K." -> "uk": not an ISO code; we map uk -> gb',
    "ger": 'input "Ger." -> "ge": truncation gives Georgia, the intent is Germany (de)',
    "germania": 'input "Germánia" -> "ge": truncation gives Georgia, intent is Germany',
    "japao": 'input "Japão" -> "ja": truncation, "ja" is not a country (Japan is jp)',
    "cnd": 'input "C4n4d4" -> "cn": digits stripped then truncated, gives China',
    "grmny": 'input "G3rm4ny" -> "gr": digits stripped then truncated, gives Greece',
    "untdstts": 'input "U@n!t3d St@t3s" -> "un": truncation of garbled text',
    "frnc": 'input "Fr4nc3" -> "fr": right only by luck of truncation; not a name',
    "unknown": 'input "unknown" -> "un": truncation of a non-country word',
    "randomcountry": 'input "randomcountry" -> "ra": truncation of a non-country word',
    "xyz": 'input "xyz" -> "xy": truncation of a non-country word',
    "abcdefghijk": 'input "abcdefghijk" -> "ab": truncation of a non-country word',
    "ab": 'input "ab" -> "ab": 2-letter pass-through of a non-ISO code',
    "zz": 'input "zz" -> "zz": 2-letter pass-through of a non-ISO code',
    "xy": 'input "XY" -> "xy": 2-letter pass-through of a non-ISO code',
    # Substring ("contains") matching in the reference, not names: an exact-match table
    # should not carry "country + continent" keys.
    "canadacountry": 'input "CanadaCountry" -> "ca": substring match, not a name',
    "germanyeurope": 'input "GermanyEurope" -> "de": substring match, not a name',
    "japanasia": 'input "JapanAsia" -> "jp": substring match, not a name',
    "brazilsouthamerica": 'input "BrazilSouthAmerica" -> "br": substring match',
    "australiaoceania": 'input "AustraliaOceania" -> "au": substring match',
    "canadanorthamerica": 'input "CanadaNorthAmerica" -> "ca": substring match',
}
# Also skipped by rule (see classify_country_vector): single-letter results ("a", "z",
# "X"); 64-hex-char "already hashed" pass-throughs and hash-like strings truncated to 2
# letters ("aa", "ga"); the very long "UnitedStatesxxx..."/"xxx..." boundary inputs
# (substring match / truncation); inputs with no letters (expected null).
# Note: the brief's known bug "Côte d'Ivoire" -> "ct" does not occur in this vector file;
# our table maps "cotedivoire" -> "ci".


def build_countries() -> tuple[dict[str, str], list[str]]:
    claims: dict[str, dict[str, list[str]]] = {}  # key -> code -> sources
    sources: set[str] = set()  # raw strings, for the non-ASCII report

    def claim(text: str, code: str, source: str) -> None:
        sources.add(text)
        key = lookup_key(text)
        if len(key) < 2:
            return
        claims.setdefault(key, {}).setdefault(code.lower(), []).append(f"{source}:{text!r}")

    alpha2 = {c.alpha_2.lower() for c in pycountry.countries}
    alpha3 = {c.alpha_3.lower(): c.alpha_2.lower() for c in pycountry.countries}

    for c in pycountry.countries:
        code = c.alpha_2
        claim(c.alpha_2, code, "alpha_2")
        claim(c.alpha_3, code, "alpha_3")
        claim(c.name, code, "name")
        for attr in ("common_name", "official_name"):
            value = getattr(c, attr, None)
            if value:
                claim(value, code, attr)

    for code, names in COUNTRY_ALIASES.items():
        if code not in alpha2:
            sys.exit(f"alias target {code!r} is not an ISO 3166-1 alpha-2 code")
        for name in names:
            claim(name, code, "alias")

    errors: list[str] = []
    table: dict[str, str] = {}
    for key, by_code in claims.items():
        if len(by_code) == 1:
            table[key] = next(iter(by_code))
        elif key in RESOLVED_COUNTRY_CONFLICTS:
            table[key] = RESOLVED_COUNTRY_CONFLICTS[key]
            print(f"resolved conflict {key!r}: {by_code} -> {table[key]}", file=sys.stderr)
        else:
            errors.append(f"key {key!r} maps to several codes: {by_code}")

    for key, code in table.items():
        # A key that IS a code must map to that code's own country.
        if len(key) == 2 and key in alpha2 and code != key:
            errors.append(f"key {key!r} is alpha-2 of {key} but maps to {code}")
        if len(key) == 3 and key in alpha3 and code != alpha3[key]:
            errors.append(f"key {key!r} is alpha-3 of {alpha3[key]} but maps to {code}")
        is_code = key in alpha2 or key in alpha3
        if len(key) <= 3 and not is_code and key not in SHORT_ALIAS_ALLOW:
            errors.append(f"short non-code key {key!r} -> {code}: add to SHORT_ALIAS_ALLOW?")
    for key in SHORT_ALIAS_ALLOW:
        if key in alpha2 or key in alpha3:
            errors.append(f"SHORT_ALIAS_ALLOW key {key!r} is a real ISO code")
    for key in RESOLVED_COUNTRY_CONFLICTS:
        if key not in claims or len(claims[key]) < 2:
            print(f"note: RESOLVED_COUNTRY_CONFLICTS[{key!r}] no longer conflicts",
                  file=sys.stderr)
    if errors:
        sys.exit("country table errors:\n  " + "\n  ".join(errors))
    non_ascii = sorted({ch for s in sources for ch in s.lower() if ord(ch) > 127})
    return table, non_ascii


# --------------------------------------------------------------------------------------
# 2. Currencies
# --------------------------------------------------------------------------------------


def build_currencies() -> list[str]:
    # pycountry's ISO 4217 list holds only current codes (withdrawn ones live elsewhere),
    # including funds, metals, XTS (testing) and XXX (no currency).
    codes = sorted({c.alpha_3.upper() for c in pycountry.currencies})
    for code in codes:
        assert len(code) == 3 and code.isascii() and code.isalpha(), code
    return codes


# --------------------------------------------------------------------------------------
# 3. US states / DC / territories and Canadian provinces / territories
# --------------------------------------------------------------------------------------

US_TERRITORIES = {"pr", "gu", "vi", "as", "mp"}  # US-UM (Minor Outlying Islands) excluded
# Extra exact names beyond pycountry's English subdivision names.
REGION_EXTRA_NAMES: dict[str, list[str]] = {
    "qc": ["Québec"],  # French spelling; same key as "Quebec"
    "vi": ["US Virgin Islands", "U.S. Virgin Islands", "United States Virgin Islands"],
}


def build_regions() -> dict[str, str]:
    claims: dict[str, set[str]] = {}
    counts = {"State": 0, "District": 0, "Outlying area": 0, "CA": 0}
    for cc in ("US", "CA"):
        for sub in pycountry.subdivisions.get(country_code=cc):
            code = sub.code.split("-", 1)[1].lower()
            if cc == "US":
                if sub.type == "Outlying area" and code not in US_TERRITORIES:
                    continue
                counts[sub.type] += 1
            else:
                counts["CA"] += 1
            claims.setdefault(lookup_key(sub.name), set()).add(code)
    expected = {"State": 50, "District": 1, "Outlying area": 5, "CA": 13}
    if counts != expected:
        sys.exit(f"unexpected US/CA subdivision counts {counts}, want {expected}")
    for code, names in REGION_EXTRA_NAMES.items():
        for name in names:
            claims.setdefault(lookup_key(name), set()).add(code)
    conflicts = {k: v for k, v in claims.items() if len(v) != 1}
    if conflicts:
        sys.exit(f"US/CA region key conflicts: {conflicts}")
    return {k: next(iter(v)) for k, v in claims.items()}


# --------------------------------------------------------------------------------------
# 4. Gender
# --------------------------------------------------------------------------------------

GENDER_WORDS: dict[str, list[str]] = {
    # From the brief.
    "f": ["f", "female", "woman", "women", "girl", "lady", "mrs", "ms", "miss", "she",
          "her", "fem"],
    "m": ["m", "male", "man", "men", "boy", "gentleman", "mr", "he", "him"],
}
# Accepted inputs (expected "f"/"m") of capi-param-builder genderUtil.test.js.
# "ma'am" is stored as "maam" (keys are ASCII letters only).
GENDER_FROM_VECTORS: dict[str, list[str]] = {
    "f": ["aunt", "belle", "bride", "chick", "countess", "dame", "daughter", "duchess",
          "empress", "gal", "girlfriend", "goddess", "hers", "herself", "lass", "maam",
          "madam", "maiden", "mama", "mom", "mommy", "mother", "niece", "princess",
          "queen", "sister", "widow", "wife"],
    "m": ["bloke", "boyfriend", "brother", "chap", "count", "dad", "daddy", "dude", "duke",
          "emperor", "father", "fellow", "god", "groom", "guy", "himself", "his", "husband",
          "king", "lad", "lord", "mister", "nephew", "papa", "prince", "sir", "son",
          "uncle", "widower"],
}
# Deliberately left out although the vector file mentions them:
#   - none of the accepted ("f"/"m") English words were left out.
#   - rejected by the reference and not added: non-English words ("Frau", "Mann", "femme",
#     "homme", "donna", "uomo", "mujer", "hombre", Greek/Russian/Chinese words), plurals
#     "males"/"females", prefixes "ma"/"mal"/"femal"/"gir"/"woma"/"bo", "boyish", "girly",
#     "manly", "hero", "shell", and non-binary/unknown values (the API only knows f and m).
# "w" is left out (ambiguous; the reference rejects it). "women", "men" and "fem" are not
# tested by the reference either way.
GENDER_KNOWN_DEVIATIONS: set[str] = set()


def build_gender() -> dict[str, str]:
    table: dict[str, str] = {}
    for source in (GENDER_WORDS, GENDER_FROM_VECTORS):
        for value, words in source.items():
            for word in words:
                if not (word.isascii() and word.isalpha() and word.islower()):
                    sys.exit(f"gender key {word!r} is not plain lowercase ASCII letters")
                if table.get(word, value) != value:
                    sys.exit(f"gender key {word!r} maps to both {table[word]} and {value}")
                table[word] = value
    return table


# --------------------------------------------------------------------------------------
# Cross-check against the official SDK vectors
# --------------------------------------------------------------------------------------


def _is_hash_like(s: str) -> bool:
    """A SHA-256 hex digest, or something within one character of looking like one."""
    return 63 <= len(s) <= 65 and s.isascii() and s.isalnum()


def classify_country_vector(inp: str, expected: str | None, table: dict[str, str]) -> str:
    key = lookup_key(inp)
    if expected is None:
        return "ok" if not key else "unclassified"
    if table.get(key) == expected:
        return "ok"
    if key in VECTOR_COUNTRY_SKIPPED:
        return "skipped"
    if len(expected) < 2 or _is_hash_like(inp):
        return "skipped"  # single letters, hash pass-through, hash-like truncation
    if len(inp) > 200:
        return "skipped"  # boundary inputs (substring match / truncation)
    return "unclassified"


def check_vectors(path: Path, countries: dict[str, str], gender: dict[str, str]) -> None:
    problems: list[str] = []
    stats = {"country": 0, "ge": 0, "skipped": 0}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            vec = json.loads(line)
            if VECTOR_SDK not in vec.get("sdk", "") or "expected" not in vec:
                continue
            inp, expected = vec["input"], vec["expected"]
            if not isinstance(inp, str):
                continue
            if vec["field"] == "country":
                stats["country"] += 1
                verdict = classify_country_vector(inp, expected, countries)
                stats["skipped"] += verdict == "skipped"
                if verdict == "unclassified":
                    problems.append(f"country {inp[:60]!r} -> {expected!r}")
            elif vec["field"] == "ge":
                stats["ge"] += 1
                word = inp.strip().lower().replace("'", "")
                if expected in ("f", "m"):
                    if gender.get(word) != expected:
                        problems.append(f"ge {inp!r} -> {expected!r} not in GENDER_BY_KEY")
                elif word in gender and word not in GENDER_KNOWN_DEVIATIONS:
                    problems.append(f"ge {inp!r}: reference rejects it, table has {word!r}")
    if problems:
        sys.exit(f"{path}: vectors not covered and not listed as skipped:\n  "
                 + "\n  ".join(problems))
    print(f"vectors ok: {stats['country']} country ({stats['skipped']} deliberately "
          f"skipped), {stats['ge']} ge", file=sys.stderr)


# --------------------------------------------------------------------------------------
# Rust output
# --------------------------------------------------------------------------------------


def rust_pairs(name: str, doc: list[str], rows: dict[str, str]) -> list[str]:
    out = [f"/// {d}".rstrip() for d in doc]
    out.append(f"pub(crate) static {name}: &[(&str, &str)] = &[")
    out += [f'    ("{k}", "{v}"),' for k, v in sorted(rows.items())]
    out.append("];")
    return out


def rust_str_list(name: str, doc: list[str], items: list[str], width: int = 100) -> list[str]:
    # rustfmt lays out arrays of short literals (<= 10 chars) "mixed": as many per line
    # as fit in max_width (100), so emit exactly that to stay `rustfmt --check` clean.
    out = [f"/// {d}".rstrip() for d in doc]
    out.append(f"pub(crate) static {name}: &[&str] = &[")
    line = ""
    for item in items:
        lit = f'"{item}",'
        candidate = f"{line} {lit}" if line else f"    {lit}"
        if len(candidate) > width:
            out.append(line)
            candidate = f"    {lit}"
        line = candidate
    if line:
        out.append(line)
    out.append("];")
    return out


def render(countries, currencies, regions, gender, version) -> str:
    lines = [
        f"// @generated by tools/gen_tables.py from pycountry {version} data.",
        "// Do not edit by hand: change tools/gen_tables.py and rerun it (see tools/README.md).",
        "//",
        "// Keys are in lookup-key form: Unicode-lowercase, NFKD-decompose, drop combining",
        "// marks, keep only ASCII a-z. Every slice is sorted by key for `binary_search_by`.",
        "",
    ]
    lines += rust_pairs(
        "COUNTRY_BY_KEY",
        [
            "Country lookup key → ISO 3166-1 alpha-2 code (lowercase).",
            "",
            "Keys: alpha-2 and alpha-3 codes, ISO short, common and official names, and",
            "common English aliases (`uk`, `usa`, `holland`, …).",
        ],
        countries,
    )
    lines.append("")
    lines += rust_str_list(
        "CURRENCIES",
        ["Active ISO 4217 alphabetic currency codes (uppercase), sorted."],
        currencies,
    )
    lines.append("")
    lines += rust_pairs(
        "US_CA_REGION_BY_KEY",
        [
            "Full name (lookup key) of a US state, DC, US territory, or Canadian province or",
            "territory → 2-letter postal code (lowercase).",
        ],
        regions,
    )
    lines.append("")
    lines += rust_pairs(
        "GENDER_BY_KEY",
        ["Lowercase English gender word → `f` or `m`."],
        gender,
    )
    lines += [
        "",
        "#[cfg(test)]",
        "mod tests {",
        "    use super::*;",
        "",
        "    fn keys_strictly_sorted(table: &[(&str, &str)]) -> bool {",
        "        table.windows(2).all(|w| w[0].0 < w[1].0)",
        "    }",
        "",
        "    #[test]",
        "    fn tables_are_strictly_sorted() {",
        "        assert!(keys_strictly_sorted(COUNTRY_BY_KEY));",
        "        assert!(keys_strictly_sorted(US_CA_REGION_BY_KEY));",
        "        assert!(keys_strictly_sorted(GENDER_BY_KEY));",
        "        assert!(CURRENCIES.windows(2).all(|w| w[0] < w[1]));",
        "    }",
        "}",
    ]
    text = "\n".join(lines) + "\n"
    assert all(len(line) <= 100 for line in text.splitlines()), "line over 100 chars"
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--out", type=Path, default=OUT, help=f"output file (default {OUT})")
    ap.add_argument("--check", action="store_true", help="fail if --out is not up to date")
    ap.add_argument("--vectors", default=str(DEFAULT_VECTORS),
                    help="official-sdk-vectors.jsonl to cross-check ('' to skip)")
    args = ap.parse_args()

    version = metadata.version("pycountry")
    countries, non_ascii = build_countries()
    currencies = build_currencies()
    regions = build_regions()
    gender = build_gender()

    for table in (countries, regions):
        assert all(k.isascii() and k.isalpha() and k.islower() and len(k) >= 2 for k in table)
    assert all(len(v) == 2 for v in list(countries.values()) + list(regions.values()))
    assert set(gender.values()) == {"f", "m"}

    if args.vectors:
        vectors = Path(args.vectors)
        if vectors.exists():
            check_vectors(vectors, countries, gender)
        else:
            print(f"note: {vectors} not found, vector cross-check skipped", file=sys.stderr)

    text = render(countries, currencies, regions, gender, version)
    print(f"pycountry {version}: {len(countries)} country keys, {len(currencies)} currencies, "
          f"{len(regions)} region keys, {len(gender)} gender keys; non-ASCII source chars "
          f"folded: {''.join(non_ascii)}", file=sys.stderr)
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            sys.exit(f"{args.out} is stale: rerun tools/gen_tables.py")
        print(f"{args.out} is up to date", file=sys.stderr)
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
