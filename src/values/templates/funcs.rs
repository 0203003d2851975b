//! How the interpreter treats each Go/Sprig/Helm function it does not model one by one.

use std::collections::HashMap;
use std::sync::OnceLock;

/// What a function does with its arguments, for the purpose of finding values paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Class {
    /// Serializes its arguments whole (`toYaml .Values.probe`); even a chart root (`toYaml $`)
    /// consumes that chart's `.Values` whole.
    Serialize,
    /// Uses its arguments as scalars (or lists of scalars): they stay referenced, not whole.
    Scalar,
    /// Returns its last argument transformed as a string or number (`quote`, `toString`, `trunc
    /// 63`): the value is still that path (what image-tag fallbacks need).
    Propagate,
    /// Anything else (list and map functions, `fromYaml`, functions added in later Helm
    /// versions): values paths passed to it are consumed whole, so that no key it may read is
    /// ever reported unknown.
    Opaque,
}

/// Names separated by whitespace (a set built once; see `class`).
const SERIALIZE: &str = "toYaml toYamlPretty mustToYaml toJson mustToJson toPrettyJson
    mustToPrettyJson toRawJson mustToRawJson toToml";

const PROPAGATE: &str = "quote squote toString trim trimAll trimall trimPrefix trimSuffix lower
    upper trunc nospace replace int int64 float64 atoi toDecimal";

const SCALAR: &str = "
    eq ne lt le gt ge not len html js urlquery
    abbrev abbrevboth title untitle substr repeat initials randAlphaNum randAlpha randAscii
    randNumeric swapcase shuffle snakecase camelcase kebabcase wrap wrapWith contains hasPrefix
    hasSuffix cat indent nindent plural sha1sum sha256sum sha512sum adler32sum b64enc b64dec
    b32enc b32dec split splitList splitn join regexMatch mustRegexMatch regexFind mustRegexFind
    regexFindAll mustRegexFindAll regexReplaceAll mustRegexReplaceAll regexReplaceAllLiteral
    mustRegexReplaceAllLiteral regexSplit mustRegexSplit regexQuoteMeta quoteAll
    add add1 sub mul div mod max min maxf minf addf add1f subf mulf divf ceil floor round biggest
    randInt until untilStep seq empty kindOf kindIs typeOf typeIs typeIsLike deepEqual semver
    semverCompare now date dateInZone date_in_zone dateModify date_modify mustDateModify toDate
    mustToDate htmlDate htmlDateInZone ago duration durationRound unixEpoch base dir clean ext
    isAbs osBase osDir osClean osExt osIsAbs uuidv4 urlParse urlJoin bcrypt htpasswd
    derivePassword genPrivateKey genCA genCAWithKey genSelfSignedCert genSelfSignedCertWithKey
    genSignedCert genSignedCertWithKey buildCustomCert encryptAES decryptAES getHostByName has
    mustHas fail lookup env expandenv hello";

pub(super) fn class(name: &str) -> Class {
    static TABLE: OnceLock<HashMap<&'static str, Class>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = HashMap::new();
        for (names, class) in [
            (SCALAR, Class::Scalar),
            (PROPAGATE, Class::Propagate),
            (SERIALIZE, Class::Serialize),
        ] {
            t.extend(names.split_whitespace().map(|n| (n, class)));
        }
        t
    });
    table.get(name).copied().unwrap_or(Class::Opaque)
}
