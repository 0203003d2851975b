//! Versions: SemVer 2.0 (what Helm requires of a chart version) and the next version from
//! conventional commits — a `!` after the type or a `BREAKING CHANGE:` footer → major, `feat` →
//! minor, anything else → patch.

use std::cmp::Ordering;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    /// `-rc.1` without the dash; empty for a release.
    pub pre: String,
    /// `+build.5` without the plus; ignored in comparisons.
    pub build: String,
}

impl Version {
    /// SemVer 2.0: `MAJOR.MINOR.PATCH[-PRE][+BUILD]`, no leading zeros, no `v`.
    pub fn parse(text: &str) -> Result<Version, String> {
        let bad =
            |why: &str| format!("`{text}` is not a semantic version (MAJOR.MINOR.PATCH): {why}");
        let (rest, build) = match text.split_once('+') {
            Some((r, b)) => (r, b),
            None => (text, ""),
        };
        let (core, pre) = match rest.split_once('-') {
            Some((c, p)) => (c, p),
            None => (rest, ""),
        };
        let ident_ok = |s: &str, numeric_rule: bool| {
            s.split('.').all(|id| {
                !id.is_empty()
                    && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !(numeric_rule
                        && id.len() > 1
                        && id.starts_with('0')
                        && id.chars().all(|c| c.is_ascii_digit()))
            })
        };
        if text.contains('+') && !ident_ok(build, false) {
            return Err(bad("bad build metadata"));
        }
        if rest.contains('-') && !ident_ok(pre, true) {
            return Err(bad("bad pre-release"));
        }
        let nums: Vec<&str> = core.split('.').collect();
        if nums.len() != 3 {
            return Err(bad("expected three numbers"));
        }
        let mut parsed = [0u64; 3];
        for (i, n) in nums.iter().enumerate() {
            if n.is_empty()
                || !n.chars().all(|c| c.is_ascii_digit())
                || (n.len() > 1 && n.starts_with('0'))
            {
                return Err(bad(&format!("`{n}` is not a number without leading zeros")));
            }
            parsed[i] = n.parse().map_err(|_| bad("number too large"))?;
        }
        Ok(Version {
            major: parsed[0],
            minor: parsed[1],
            patch: parsed[2],
            pre: pre.to_owned(),
            build: build.to_owned(),
        })
    }

    /// The next release after `self` for `bump`.
    pub fn bumped(&self, bump: Bump) -> Version {
        let (major, minor, patch) = match bump {
            Bump::Major => (self.major + 1, 0, 0),
            Bump::Minor => (self.major, self.minor + 1, 0),
            Bump::Patch => (self.major, self.minor, self.patch + 1),
        };
        Version {
            major,
            minor,
            patch,
            pre: String::new(),
            build: String::new(),
        }
    }

    /// SemVer precedence (build metadata ignored; a pre-release sorts before its release).
    pub fn precedence(&self, other: &Version) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_pre(&self.pre, &other.pre),
            })
    }
}

fn compare_pre(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.split('.'), b.split('.'));
    loop {
        match (x.next(), y.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(p), Some(q)) => {
                let o = match (p.parse::<u64>(), q.parse::<u64>()) {
                    (Ok(m), Ok(n)) => m.cmp(&n),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    (Err(_), Err(_)) => p.cmp(q),
                };
                if o != Ordering::Equal {
                    return o;
                }
            }
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre)?;
        }
        if !self.build.is_empty() {
            write!(f, "+{}", self.build)?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Bump {
    Patch,
    Minor,
    Major,
}

/// What one commit message asks for (Conventional Commits 1.0): `type(scope)!: subject`, and
/// `BREAKING CHANGE:` / `BREAKING-CHANGE:` footers. A message that is not conventional is a fix.
pub fn bump_of(message: &str) -> Bump {
    let subject = message.lines().next().unwrap_or_default().trim();
    let head = subject.split_once(':').map(|(h, _)| h.trim()).unwrap_or("");
    let breaking_footer = message
        .lines()
        .skip(1)
        .any(|l| l.starts_with("BREAKING CHANGE:") || l.starts_with("BREAKING-CHANGE:"));
    let conventional = !head.is_empty()
        && head
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "()!-_/., ".contains(c));
    if breaking_footer || (conventional && head.ends_with('!')) {
        return Bump::Major;
    }
    let kind = head.split(['(', '!']).next().unwrap_or("").trim();
    if conventional && kind.eq_ignore_ascii_case("feat") {
        Bump::Minor
    } else {
        Bump::Patch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_is_parsed_strictly() {
        for ok in ["0.1.0", "1.2.3-rc.1", "1.2.3+build.7", "10.0.0-alpha-1+x"] {
            assert_eq!(Version::parse(ok).unwrap().to_string(), ok);
        }
        for bad in [
            "1.2", "v1.2.3", "01.2.3", "1.2.3-", "1.2.3-01", "1.2.x", "", "1.2.3+",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn conventional_commits_choose_the_bump() {
        assert_eq!(bump_of("feat: add a thing"), Bump::Minor);
        assert_eq!(bump_of("feat(api): add a thing"), Bump::Minor);
        assert_eq!(bump_of("fix: repair"), Bump::Patch);
        assert_eq!(bump_of("chore: deps"), Bump::Patch);
        assert_eq!(bump_of("Update README"), Bump::Patch);
        assert_eq!(bump_of("refactor!: drop v1"), Bump::Major);
        assert_eq!(bump_of("feat(api)!: drop v1"), Bump::Major);
        assert_eq!(
            bump_of("fix: x\n\nBREAKING CHANGE: the port moved"),
            Bump::Major
        );
        let v = Version::parse("0.2.0").unwrap();
        assert_eq!(v.bumped(Bump::Major).to_string(), "1.0.0");
        assert_eq!(v.bumped(Bump::Minor).to_string(), "0.3.0");
        assert_eq!(v.bumped(Bump::Patch).to_string(), "0.2.1");
        let rc = Version::parse("1.0.0-rc.2").unwrap();
        assert_eq!(
            rc.precedence(&Version::parse("1.0.0").unwrap()),
            Ordering::Less
        );
        assert_eq!(
            rc.precedence(&Version::parse("1.0.0-rc.10").unwrap()),
            Ordering::Less
        );
    }
}
