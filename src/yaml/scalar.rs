//! Plain-scalar resolution exactly as Helm reads values.
//!
//! Helm parses values with `sigs.k8s.io/yaml`, which decodes with go-yaml v2 (YAML 1.1 rules) and
//! then round-trips through JSON, so every number ends up a float64. The rules below follow go-yaml
//! v2's `resolve()`; the conformance tests (tests/it/conformance.rs) check them against real Helm.
//! Where a YAML 1.2 reader (most editors, yq, Rust and Python YAML 1.2 libraries) would read the same
//! text differently, [`Resolved::ambiguity`] says so, so `validate` can tell the user to quote it.

use crate::yaml::Value;

/// What a plain scalar means to Helm, and how a YAML 1.2 reader would differ.
pub struct Resolved {
    pub value: Value,
    /// `Some(description of the YAML 1.2 reading)` when YAML 1.2 core schema disagrees.
    pub ambiguity: Option<&'static str>,
}

const TRUE_WORDS: [&str; 11] = [
    "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON",
];
const FALSE_WORDS: [&str; 11] = [
    "n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF",
];
const YAML12_BOOLS: [&str; 6] = ["true", "True", "TRUE", "false", "False", "FALSE"];

/// A scalar as go-yaml v2 decodes it into `interface{}`, before sigs.k8s.io/yaml's JSON round
/// trip: integers stay exact here because map keys are stringified from them.
#[derive(Clone, Debug, PartialEq)]
pub enum Go {
    Null,
    Bool(bool),
    /// `int` (go-yaml returns int for anything `ParseInt` reads).
    Int(i64),
    /// `uint64`: beyond int64, within uint64.
    Uint(u64),
    Float(f64),
    /// Strings, and timestamps (kept as their text when decoding into `interface{}`).
    Str(String),
}

impl Go {
    /// The value after the JSON round trip: every number a float64.
    pub fn value(self) -> Value {
        match self {
            Go::Null => Value::Null,
            Go::Bool(b) => Value::Bool(b),
            Go::Int(i) => Value::Number(i as f64),
            Go::Uint(u) => Value::Number(u as f64),
            Go::Float(f) => Value::Number(f),
            Go::Str(s) => Value::Str(s),
        }
    }

    /// The map key sigs.k8s.io/yaml makes of it (`convertToJSONableObject`): ints in decimal,
    /// floats as `strconv.FormatFloat(f, 'g', -1, 32)` (`.inf`, `-.inf`, `.nan` for the
    /// non-finite), booleans as `true`/`false`; a uint64 or null key is an error.
    pub fn key(&self) -> Result<String, &'static str> {
        match self {
            Go::Str(s) => Ok(s.clone()),
            Go::Bool(b) => Ok(b.to_string()),
            Go::Int(i) => Ok(i.to_string()),
            Go::Float(f) => Ok(go_format_float32_g(*f)),
            Go::Uint(_) => Err("uint64"),
            Go::Null => Err("null"),
        }
    }
}

/// `strconv.FormatFloat(f, 'g', -1, 32)` with sigs.k8s.io/yaml's spellings of the non-finite.
fn go_format_float32_g(f: f64) -> String {
    let f = f as f32;
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    // Shortest digits that read back as the same float32, and the decimal exponent.
    let e = format!("{:e}", f.abs());
    let (mantissa, exp) = e.split_once('e').expect("LowerExp has an exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let exp: i32 = exp.parse().expect("an exponent");
    let sign = if f.is_sign_negative() { "-" } else { "" };
    // %e when the exponent is < -4 or >= the precision (6 for the shortest form), else %f.
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{first}{dot}{rest}e{esign}{:02}", exp.abs())
    } else {
        format!("{sign}{}", f.abs())
    }
}

/// Resolves an untagged plain scalar the way go-yaml v2 does.
pub fn resolve_plain(text: &str) -> Resolved {
    let (go, ambiguity) = plain(text);
    Resolved {
        value: go.value(),
        ambiguity,
    }
}

/// An untagged plain scalar as go-yaml v2 decodes it, and how a YAML 1.2 reader would differ.
pub fn plain(text: &str) -> (Go, Option<&'static str>) {
    let (_, go) = resolve(None, text);
    let ambiguity = match &go {
        Go::Bool(_) if !YAML12_BOOLS.contains(&text) => Some("a string in YAML 1.2"),
        Go::Int(_) | Go::Uint(_) | Go::Float(_) if text.contains('_') => {
            Some("a string in YAML 1.2 (underscores are not digit separators there)")
        }
        Go::Int(_) | Go::Uint(_) if is_legacy_octal(text) => {
            Some("a decimal integer in YAML 1.2 (a leading 0 is octal only in YAML 1.1)")
        }
        Go::Int(_) | Go::Uint(_) if text.trim_start_matches(['+', '-']).starts_with("0b") => {
            Some("a string in YAML 1.2 (0b binary is YAML 1.1 only)")
        }
        // go-yaml keeps a float that overflows float64 as its text; YAML 1.2 reads infinity.
        Go::Str(_) if yaml_style_float(text) && text.parse::<f64>().is_ok_and(f64::is_infinite) => {
            Some("an infinite number in YAML 1.2")
        }
        _ => None,
    };
    (go, ambiguity)
}

/// go-yaml v2 `resolve(tag, in)`: the resolved tag (`"str"`, `"int"`, ...) and the value.
/// `tag` is the suffix of an explicit `tag:yaml.org,2002:` tag (None: untagged plain).
fn resolve(tag: Option<&str>, text: &str) -> (&'static str, Go) {
    let tag = tag.unwrap_or("");
    let hint = match text.as_bytes().first() {
        None => b'N',
        Some(b'+' | b'-') => b'S',
        Some(b'0'..=b'9') => b'D',
        Some(b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'o' | b'O' | b'~') => b'M',
        Some(b'.') => b'.',
        Some(_) => 0,
    };
    let str = || ("str", Go::Str(text.to_owned()));
    if hint == 0 || tag == "str" || tag == "binary" {
        return str();
    }
    // resolveMap
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return ("null", Go::Null),
        ".nan" | ".NaN" | ".NAN" => return ("float", Go::Float(f64::NAN)),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return ("float", Go::Float(f64::INFINITY))
        }
        "-.inf" | "-.Inf" | "-.INF" => return ("float", Go::Float(f64::NEG_INFINITY)),
        "<<" => return ("merge", Go::Str(text.to_owned())),
        _ => {}
    }
    if TRUE_WORDS.contains(&text) {
        return ("bool", Go::Bool(true));
    }
    if FALSE_WORDS.contains(&text) {
        return ("bool", Go::Bool(false));
    }
    match hint {
        // strconv.ParseFloat of the text as written (underscores included).
        b'.' => {
            if let Some(f) = go_parse_float(text) {
                return ("float", Go::Float(f));
            }
        }
        b'D' | b'S' => {
            if (tag.is_empty() || tag == "timestamp") && is_timestamp(text) {
                // Decoded into interface{}, a timestamp stays its text.
                return ("timestamp", Go::Str(text.to_owned()));
            }
            let plain: String = text.chars().filter(|&c| c != '_').collect();
            match go_parse_int_base0(&plain) {
                Some(Go::Int(i)) => return ("int", Go::Int(i)),
                Some(Go::Uint(u)) => return ("int", Go::Uint(u)),
                _ => {}
            }
            // ParseFloat fails on overflow (ErrRange): the text stays a string.
            if yaml_style_float(&plain) {
                if let Some(f) = go_parse_float(&plain) {
                    return ("float", Go::Float(f));
                }
            }
            // `0b`/`-0b` retries: ParseInt(base 0) already read every form they accept.
        }
        _ => {}
    }
    str()
}

/// A scalar with an explicit `tag:yaml.org,2002:<suffix>` tag (`!!int "7"`), as go-yaml v2's
/// `decoder.scalar` reads it: `str` and unknown tags keep the text, `binary` is base64-decoded,
/// the others resolve the text whatever its quoting and must resolve to their own type (an int
/// is accepted as a float); anything else is go-yaml's "cannot decode" error.
pub fn resolve_tagged(suffix: &str, text: &str) -> Result<Go, String> {
    match suffix {
        "str" => return Ok(Go::Str(text.to_owned())),
        "binary" => {
            return base64_std_decode(text)
                .map(|b| Go::Str(String::from_utf8_lossy(&b).into_owned()))
                .ok_or_else(|| "!!binary value contains invalid base64 data".to_owned())
        }
        "bool" | "int" | "float" | "null" | "timestamp" => {}
        _ => return Ok(Go::Str(text.to_owned())),
    }
    let (rtag, go) = resolve(Some(suffix), text);
    match (suffix, rtag, go) {
        (want, got, go) if want == got => Ok(go),
        ("float", "int", Go::Int(i)) => Ok(Go::Float(i as f64)),
        (want, got, _) => Err(format!("cannot decode !!{got} `{text}` as a !!{want}")),
    }
}

/// Go's `base64.StdEncoding.DecodeString` (padding required; `\r` and `\n` skipped).
fn base64_std_decode(text: &str) -> Option<Vec<u8>> {
    let sextet = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let chars: Vec<u8> = text
        .bytes()
        .filter(|c| !matches!(c, b'\r' | b'\n'))
        .collect();
    if chars.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::new();
    for (i, quad) in chars.chunks(4).enumerate() {
        let last = i + 1 == chars.len() / 4;
        let pads = quad.iter().rev().take_while(|c| **c == b'=').count();
        if pads > 2 || (pads > 0 && !last) {
            return None;
        }
        let mut n: u32 = 0;
        for &c in &quad[..4 - pads] {
            n = (n << 6) | u32::from(sextet(c)?);
        }
        n <<= 6 * pads as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        // Go rejects non-zero bits in the padding of the last quantum only in strict mode.
        out.extend_from_slice(&bytes[..3 - pads]);
    }
    Some(out)
}

/// `strconv.ParseFloat(s, 64)` for the decimal forms go-yaml hands it (a leading `.`, or text
/// matching its float pattern): underscores only between digits, and an error — hence `None` —
/// when the number overflows float64.
fn go_parse_float(s: &str) -> Option<f64> {
    if s.contains('_') && !go_underscore_ok(s) {
        return None;
    }
    let t: String = s.chars().filter(|&c| c != '_').collect();
    if !yaml_style_float(&t) {
        return None;
    }
    t.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// strconv's `underscoreOK`: underscores only between digits (or after a base prefix).
fn go_underscore_ok(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s).as_bytes();
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if s.len() >= 2 && s[0] == b'0' && matches!(s[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = s[1].eq_ignore_ascii_case(&b'x');
    }
    while i < s.len() {
        let c = s[i];
        i += 1;
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
            continue;
        }
        if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
            continue;
        }
        if saw == b'_' {
            return false;
        }
        saw = b'!';
    }
    saw != b'_'
}

/// `strconv.ParseInt(s, 0, 64)` (an int), else `ParseUint(s, 0, 64)` (a uint64), as go-yaml
/// tries them; `s` has no underscores left.
fn go_parse_int_base0(s: &str) -> Option<Go> {
    let (sign, body) = match s.as_bytes().first()? {
        b'+' => (Some(false), &s[1..]),
        b'-' => (Some(true), &s[1..]),
        _ => (None, s),
    };
    let (radix, digits) = if body.len() >= 3 && body.starts_with('0') {
        match body.as_bytes()[1].to_ascii_lowercase() {
            b'x' => (16, &body[2..]),
            b'b' => (2, &body[2..]),
            b'o' => (8, &body[2..]),
            _ => (8, &body[1..]),
        }
    } else if body.len() > 1 && body.starts_with('0') {
        (8, &body[1..])
    } else {
        (10, body)
    };
    if (digits.is_empty() && body != "0") || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = if digits.is_empty() {
        0
    } else {
        u64::from_str_radix(digits, radix).ok()?
    };
    match sign {
        // ParseInt range: down to -2^63. ParseUint never accepts a sign.
        Some(true) if magnitude <= 1u64 << 63 => Some(Go::Int((magnitude as i64).wrapping_neg())),
        Some(true) => None,
        _ if magnitude < 1u64 << 63 => Some(Go::Int(magnitude as i64)),
        Some(false) => None,
        None => Some(Go::Uint(magnitude)),
    }
}

fn is_legacy_octal(s: &str) -> bool {
    let body = s.trim_start_matches(['+', '-']);
    body.len() > 1 && body.starts_with('0') && body.as_bytes()[1].is_ascii_digit()
}

/// go-yaml v2's `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// go-yaml v2 `parseTimestamp`: exactly four digits then '-', then one of its accepted layouts.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    // Layouts: "2006-1-2", "2006-1-2 15:4:5.999999999", "2006-1-2T15:4:5.999999999Z07:00" (also 't').
    let rest = &s[5..];
    let (date, time) = match rest.find(['T', 't', ' ']) {
        Some(i) => (&rest[..i], Some((&rest[i..i + 1], &rest[i + 1..]))),
        None => (rest, None),
    };
    let mut parts = date.split('-');
    let (Some(m), Some(d), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let num = |p: &str, max: u32| {
        (1..=2).contains(&p.len())
            && p.bytes().all(|c| c.is_ascii_digit())
            && (1..=max).contains(&p.parse::<u32>().unwrap_or(0))
    };
    if !num(m, 12) || !num(d, 31) {
        return false;
    }
    // time.Parse checks the day against the month ("day out of range" for 2023-02-29).
    let year: u32 = s[..4].parse().unwrap_or(0);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match m.parse::<u32>().unwrap_or(0) {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if d.parse::<u32>().unwrap_or(0) > days {
        return false;
    }
    let Some((sep, time)) = time else { return true };
    let clock = |t: &str| {
        let mut it = t.splitn(3, ':');
        let (Some(h), Some(mi), Some(sec)) = (it.next(), it.next(), it.next()) else {
            return false;
        };
        let sec_int = sec.split('.').next().unwrap_or("");
        let frac_ok = sec
            .split_once('.')
            .is_none_or(|(_, f)| !f.is_empty() && f.bytes().all(|c| c.is_ascii_digit()));
        let small = |p: &str, max: u32| {
            (1..=2).contains(&p.len())
                && p.bytes().all(|c| c.is_ascii_digit())
                && p.parse::<u32>().is_ok_and(|v| v <= max)
        };
        small(h, 23) && small(mi, 59) && small(sec_int, 59) && frac_ok
    };
    if sep == " " {
        return clock(time);
    }
    // RFC 3339 with a zone: Z or ±hh:mm.
    let (clock_part, zone) = if let Some(t) = time.strip_suffix('Z') {
        (t, "Z")
    } else if let Some(i) = time.rfind(['+', '-']) {
        (&time[..i], &time[i..])
    } else {
        return false;
    };
    let zone_ok = zone == "Z" || {
        let z = &zone[1..];
        z.len() == 5
            && z.as_bytes()[2] == b':'
            && z[..2]
                .bytes()
                .chain(z[3..].bytes())
                .all(|c| c.is_ascii_digit())
    };
    zone_ok && clock(clock_part)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(s: &str) -> Option<f64> {
        match resolve_plain(s).value {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    #[test]
    fn yaml11_booleans_are_flagged() {
        let r = resolve_plain("yes");
        assert!(matches!(r.value, Value::Bool(true)));
        assert!(r.ambiguity.is_some());
        let r = resolve_plain("OFF");
        assert!(matches!(r.value, Value::Bool(false)));
        let r = resolve_plain("true");
        assert!(matches!(r.value, Value::Bool(true)));
        assert!(r.ambiguity.is_none());
        assert!(matches!(resolve_plain("yEs").value, Value::Str(_)));
    }

    #[test]
    fn numbers_follow_go_base0_rules() {
        assert_eq!(num("0755"), Some(493.0));
        assert_eq!(num("0x1F"), Some(31.0));
        assert_eq!(num("0o17"), Some(15.0));
        assert_eq!(num("0b101"), Some(5.0));
        assert_eq!(num("1_000"), Some(1000.0));
        assert_eq!(num("08"), Some(8.0)); // not octal: falls through to the float rule
        assert_eq!(num("1e3"), Some(1000.0));
        assert_eq!(num(".5"), Some(0.5));
        assert_eq!(num("-12"), Some(-12.0));
        assert_eq!(num("1.2.3"), None);
        assert_eq!(num("1e"), None);
        assert!(resolve_plain("0755").ambiguity.is_some());
        assert!(resolve_plain("10").ambiguity.is_none());
    }

    #[test]
    fn floats_that_overflow_stay_text() {
        // strconv.ParseFloat fails with ErrRange, so go-yaml keeps the text (not +Inf).
        for t in ["1e400", "-1e400", ".5e400", "+1e999"] {
            let r = resolve_plain(t);
            assert_eq!(r.value, Value::Str(t.into()), "{t}");
            assert!(r.ambiguity.is_some(), "{t}: YAML 1.2 reads infinity");
        }
        assert_eq!(num("1e-400"), Some(0.0)); // underflow is no error
    }

    #[test]
    fn underscores_as_strconv_reads_them() {
        // After a leading '.', go-yaml hands the text to ParseFloat as written: underscores
        // between digits are fine there.
        assert_eq!(num(".5_0"), Some(0.5));
        assert_eq!(num(".5e3_0"), Some(0.5e30));
        assert!(matches!(resolve_plain("._5").value, Value::Str(_)));
        assert!(matches!(resolve_plain(".5_").value, Value::Str(_)));
        assert_eq!(num("0x_1F"), Some(31.0));
        assert_eq!(num("1_"), Some(1.0)); // go-yaml strips every `_` before ParseInt
    }

    #[test]
    fn keys_are_stringified_as_sigs_yaml_does() {
        let key = |t: &str| plain(t).0.key();
        assert_eq!(key("9007199254740993"), Ok("9007199254740993".into())); // exact int
        assert_eq!(
            key("-9223372036854775808"),
            Ok("-9223372036854775808".into())
        );
        assert_eq!(key("12345678901234567890"), Err("uint64"));
        assert_eq!(key("~"), Err("null"));
        // strconv.FormatFloat(f, 'g', -1, 32)
        assert_eq!(key("1e3"), Ok("1000".into()));
        assert_eq!(key("1e7"), Ok("1e+07".into()));
        assert_eq!(key("1e21"), Ok("1e+21".into()));
        assert_eq!(key("1e-5"), Ok("1e-05".into()));
        assert_eq!(key("0.0001"), Ok("0.0001".into()));
        assert_eq!(key("123456789.5"), Ok("1.2345679e+08".into()));
        assert_eq!(key("100000.5"), Ok("100000.5".into()));
        assert_eq!(key("-0.0"), Ok("-0".into()));
        assert_eq!(key("1e39"), Ok(".inf".into())); // beyond float32
        assert_eq!(key("-.Inf"), Ok("-.inf".into()));
        assert_eq!(key(".nan"), Ok(".nan".into()));
        assert_eq!(key("0x1F"), Ok("31".into()));
        assert_eq!(key("on"), Ok("true".into()));
    }

    #[test]
    fn explicit_tags_as_go_yaml_decodes_them() {
        let t = |tag: &str, text: &str| resolve_tagged(tag, text).map(Go::value);
        assert_eq!(t("int", "7"), Ok(Value::Number(7.0)));
        assert_eq!(t("int", "0x10"), Ok(Value::Number(16.0)));
        assert_eq!(t("float", "2"), Ok(Value::Number(2.0)));
        assert_eq!(t("bool", "yes"), Ok(Value::Bool(true)));
        assert_eq!(t("null", ""), Ok(Value::Null));
        assert_eq!(t("str", "0755"), Ok(Value::Str("0755".into())));
        assert_eq!(t("binary", "aGVsbG8="), Ok(Value::Str("hello".into())));
        assert_eq!(
            t("timestamp", "2024-01-02"),
            Ok(Value::Str("2024-01-02".into()))
        );
        assert_eq!(t("map", "x"), Ok(Value::Str("x".into())));
        for (tag, text) in [
            ("int", "1.5"),
            ("float", "12345678901234567890"),
            ("bool", "1"),
            ("null", "x"),
            ("binary", "!!"),
            ("timestamp", "2023-02-29"),
        ] {
            assert!(t(tag, text).is_err(), "!!{tag} {text}");
        }
    }

    #[test]
    fn timestamps_stay_text() {
        assert!(matches!(resolve_plain("2024-01-02").value, Value::Str(_)));
        assert!(matches!(
            resolve_plain("2024-1-2T10:00:00Z").value,
            Value::Str(_)
        ));
        assert!(matches!(resolve_plain("2024-13-02").value, Value::Str(_))); // string anyway
        assert!(is_timestamp("2001-12-14 21:59:43.10"));
        assert!(!is_timestamp("2001-12-14x"));
    }
}
