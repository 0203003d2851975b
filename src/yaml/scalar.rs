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

/// Resolves an untagged plain scalar the way go-yaml v2 does.
pub fn resolve_plain(text: &str) -> Resolved {
    let plain = |value| Resolved {
        value,
        ambiguity: None,
    };
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return plain(Value::Null),
        ".nan" | ".NaN" | ".NAN" => return plain(Value::Number(f64::NAN)),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return plain(Value::Number(f64::INFINITY))
        }
        "-.inf" | "-.Inf" | "-.INF" => return plain(Value::Number(f64::NEG_INFINITY)),
        _ => {}
    }
    if TRUE_WORDS.contains(&text) || FALSE_WORDS.contains(&text) {
        let b = TRUE_WORDS.contains(&text);
        let ambiguity = (!YAML12_BOOLS.contains(&text)).then_some("a string in YAML 1.2");
        return Resolved {
            value: Value::Bool(b),
            ambiguity,
        };
    }
    let first = text.as_bytes()[0];
    match first {
        b'.' => match text.parse::<f64>() {
            Ok(f) if go_float_syntax(text) => plain(Value::Number(f)),
            _ => plain(Value::Str(text.to_owned())),
        },
        b'0'..=b'9' | b'+' | b'-' => resolve_numeric(text),
        _ => plain(Value::Str(text.to_owned())),
    }
}

/// Digits or a sign first: timestamp (kept as its text), int, float, binary; else string.
fn resolve_numeric(text: &str) -> Resolved {
    let plain = |value| Resolved {
        value,
        ambiguity: None,
    };
    if is_timestamp(text) {
        // go-yaml v2 keeps timestamp-like values as their text when decoding into interface{}.
        return plain(Value::Str(text.to_owned()));
    }
    let stripped: String = text.chars().filter(|&c| c != '_').collect();
    let had_underscore = stripped.len() != text.len();
    if let Some(n) = go_parse_int_base0(&stripped) {
        let ambiguity = if had_underscore {
            Some("a string in YAML 1.2 (underscores are not digit separators there)")
        } else if is_legacy_octal(&stripped) {
            Some("a decimal integer in YAML 1.2 (a leading 0 is octal only in YAML 1.1)")
        } else if stripped.trim_start_matches(['+', '-']).starts_with("0b") {
            Some("a string in YAML 1.2 (0b binary is YAML 1.1 only)")
        } else {
            None
        };
        return Resolved {
            value: Value::Number(n),
            ambiguity,
        };
    }
    if yaml_style_float(&stripped) {
        if let Ok(f) = stripped.parse::<f64>() {
            let ambiguity = had_underscore
                .then_some("a string in YAML 1.2 (underscores are not digit separators there)");
            return Resolved {
                value: Value::Number(f),
                ambiguity,
            };
        }
    }
    plain(Value::Str(text.to_owned()))
}

/// `strconv.ParseInt(s, 0, 64)` falling back to `ParseUint(s, 0, 64)` (as go-yaml does), as f64.
fn go_parse_int_base0(s: &str) -> Option<f64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) =
        if let Some(d) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (16, d)
        } else if let Some(d) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
            (2, d)
        } else if let Some(d) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
            (8, d)
        } else if body.len() > 1 && body.starts_with('0') {
            (8, &body[1..])
        } else {
            (10, body)
        };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if neg {
        // ParseInt range: down to -2^63. ParseUint never accepts a sign.
        (magnitude <= 1u64 << 63).then(|| -(magnitude as f64))
    } else {
        Some(magnitude as f64)
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

/// Go's `strconv.ParseFloat` accepts a little more than Rust's (hex floats, underscores); for a
/// scalar that starts with '.', only the decimal forms matter, which both accept alike.
fn go_float_syntax(s: &str) -> bool {
    s.bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
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
