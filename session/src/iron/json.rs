//! The JSON of a token's plaintext, read as iron-webcrypto reads it
//! (`TextDecoder`, then `JSON.parse`) and written as `JSON.stringify`
//! writes a session.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::IronError;

/// Parses a decrypted plaintext as iron-webcrypto does
/// (`TextDecoder().decode`, then `JSON.parse` unless empty).
pub(crate) fn parse_json(bytes: &[u8]) -> Result<Value, IronError> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    // Fast paths: valid UTF-8 JSON without lone surrogates. The text is
    // checked as UTF-8 once, rather than string by string as
    // `serde_json::from_slice` does.
    if let Ok(text) = std::str::from_utf8(bytes) {
        if let Some(value) = Plain::parse(text) {
            return Ok(value);
        }
        if let Ok(value) = from_json_text(text) {
            return Ok(value);
        }
    }
    // Slow path, only for input serde_json refused.
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    if text.is_empty() {
        return Ok(Value::Null);
    }
    let repaired = replace_lone_surrogates(text.as_bytes());
    serde_json::from_slice(&repaired).map_err(|_| IronError::InvalidJson)
}

/// A reader for plain JSON, the JSON a session record almost always is:
/// objects, arrays, strings without escapes, integers of up to 18 digits,
/// `true`, `false` and `null`, nested up to [`Plain::MAX_DEPTH`] deep.
///
/// It gives up (`None`) on anything else, valid or not (escapes, floats,
/// `-0`, which serde_json reads as a float, malformed text), and the
/// caller then lets serde_json decide; so whatever it returns is what
/// serde_json returns for the same text (property tests compare the two).
/// It makes no visitor calls and finds a string's end eight bytes at a
/// time; on the benches' record it takes a fifth fewer instructions than
/// serde_json's `Value`, allocations included.
struct Plain<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Plain<'a> {
    /// Deeper values are left to serde_json (whose own limit is 128).
    const MAX_DEPTH: u32 = 32;

    /// The value `text` holds, if it is plain JSON.
    fn parse(text: &'a str) -> Option<Value> {
        let mut reader = Self { text, at: 0 };
        let value = reader.value(0)?;
        reader.skip_whitespace();
        (reader.at == text.len()).then_some(value)
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    /// Skips whitespace, then takes the next byte.
    fn next_token(&mut self) -> Option<u8> {
        self.skip_whitespace();
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    fn value(&mut self, depth: u32) -> Option<Value> {
        match self.next_token()? {
            b'{' if depth < Self::MAX_DEPTH => self.object(depth + 1),
            b'[' if depth < Self::MAX_DEPTH => self.array(depth + 1),
            b'"' => self.string().map(Value::String),
            b't' => self.literal("rue", Value::Bool(true)),
            b'f' => self.literal("alse", Value::Bool(false)),
            b'n' => self.literal("ull", Value::Null),
            b'-' => self.integer(true),
            b'0'..=b'9' => {
                self.at -= 1;
                self.integer(false)
            }
            _ => None,
        }
    }

    /// After `{`. Members are collected, then built into the map in one
    /// sorted pass, where a later duplicate key wins (as in `JSON.parse`
    /// and serde_json).
    fn object(&mut self, depth: u32) -> Option<Value> {
        let mut members = Vec::with_capacity(16);
        let mut token = self.next_token()?;
        if token != b'}' {
            loop {
                if token != b'"' {
                    return None;
                }
                let key = self.string()?;
                if self.next_token()? != b':' {
                    return None;
                }
                members.push((key, self.value(depth)?));
                match self.next_token()? {
                    b',' => token = self.next_token()?,
                    b'}' => break,
                    _ => return None,
                }
            }
        }
        Some(Value::Object(members.into_iter().collect()))
    }

    /// After `[`.
    fn array(&mut self, depth: u32) -> Option<Value> {
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Some(Value::Array(items));
        }
        loop {
            items.push(self.value(depth)?);
            match self.next_token()? {
                b',' => {}
                b']' => return Some(Value::Array(items)),
                _ => return None,
            }
        }
    }

    /// After `"`: the string up to the closing `"`, if it has no escape
    /// and no control character (which JSON forbids unescaped).
    fn string(&mut self) -> Option<String> {
        let start = self.at;
        let len = first_to_escape(self.text.as_bytes().get(start..)?)?;
        if self.text.as_bytes().get(start + len) != Some(&b'"') {
            return None;
        }
        self.at = start + len + 1;
        // Both ends are ASCII, so on character boundaries.
        self.text.get(start..start + len).map(str::to_owned)
    }

    /// After the first letter of `true`, `false` or `null`.
    fn literal(&mut self, rest: &str, value: Value) -> Option<Value> {
        let end = self.at + rest.len();
        (self.text.get(self.at..end)? == rest).then(|| {
            self.at = end;
            value
        })
    }

    /// At the digits of an integer (after its `-`, if negative).
    fn integer(&mut self, negative: bool) -> Option<Value> {
        let digits = self.text.as_bytes().get(self.at..)?;
        let len = digits
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(digits.len());
        let (digits, after) = digits.split_at(len);
        let leading_zero = digits.len() > 1 && digits.first() == Some(&b'0');
        if digits.is_empty()
            || digits.len() > 18
            || leading_zero
            || matches!(after.first(), Some(b'.' | b'e' | b'E'))
        {
            return None;
        }
        self.at += len;
        let magnitude = digits
            .iter()
            .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
        if !negative {
            return Some(Value::from(magnitude));
        }
        // 18 digits fit an i64; serde_json reads `-0` as a float.
        let magnitude = i64::try_from(magnitude).ok().filter(|&m| m != 0)?;
        Some(Value::from(-magnitude))
    }
}

/// `serde_json::from_str::<Value>`, with a faster path for an object (a
/// session record): its members are read into a list, then built into a
/// map in one pass, where `Value` inserts them one by one, comparing each
/// key with those already there. A later duplicate key wins either way, as
/// in `JSON.parse`.
fn from_json_text(text: &str) -> serde_json::Result<Value> {
    if text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
    {
        serde_json::from_str::<Members>(text).map(|members| Value::Object(members.0))
    } else {
        serde_json::from_str(text)
    }
}

/// A JSON object, read as in [`from_json_text`].
struct Members(Map<String, Value>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;

        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Vec::with_capacity(16);
                while let Some(member) = map.next_entry::<String, Value>()? {
                    members.push(member);
                }
                Ok(Members(members.into_iter().collect()))
            }
        }

        deserializer.deserialize_map(MembersVisitor)
    }
}

/// Rewrites every `\u` escape of a lone UTF-16 surrogate as `\ufffd`.
/// Other bytes, escaped backslashes included, are left untouched.
fn replace_lone_surrogates(text: &[u8]) -> Cow<'_, [u8]> {
    const REPLACEMENT: &[u8] = br"\ufffd";
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut i = 0;
    while let Some(&byte) = text.get(i) {
        if byte != b'\\' {
            i += 1;
            continue;
        }
        if text.get(i + 1) != Some(&b'u') {
            // Another escape (`\\`, `\"`, ...): skip it whole.
            i += 2;
            continue;
        }
        let lone = match hex4(text, i + 2) {
            Some(0xD800..=0xDBFF) => {
                let paired = text.get(i + 6..i + 8) == Some(br"\u")
                    && matches!(hex4(text, i + 8), Some(0xDC00..=0xDFFF));
                if paired {
                    i += 12;
                    continue;
                }
                true
            }
            Some(0xDC00..=0xDFFF) => true,
            _ => false,
        };
        if lone {
            let buf = out.get_or_insert_with(|| Vec::with_capacity(text.len() + 8));
            buf.extend_from_slice(text.get(copied..i).unwrap_or_default());
            buf.extend_from_slice(REPLACEMENT);
            copied = i + 6;
        }
        i += 6;
    }
    match out {
        Some(mut buf) => {
            buf.extend_from_slice(text.get(copied..).unwrap_or_default());
            Cow::Owned(buf)
        }
        None => Cow::Borrowed(text),
    }
}

/// The value of 4 hex digits at `at`, if there are 4.
fn hex4(text: &[u8], at: usize) -> Option<u16> {
    let digits = text.get(at..at.checked_add(4)?)?;
    digits.iter().try_fold(0u16, |acc, &d| {
        let v = char::from(d).to_digit(16)?;
        Some(acc << 4 | u16::try_from(v).ok()?)
    })
}

/// Appends `value` as compact JSON: the bytes `serde_json::to_writer`
/// writes (and `JSON.stringify` for ordinary data), faster for a session.
///
/// A session's strings rarely need escaping, and serde_json checks each
/// byte against a table and copies runs between escapes; here a string with
/// nothing to escape (the check vectorises) is copied whole, and only the
/// others go through serde_json.
pub(crate) fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => to_writer(out, number),
        Value::String(text) => write_str(out, text),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(members) => write_object(out, members),
    }
}

/// Appends an object (a session record) as [`write_value`] does.
pub(crate) fn write_object(out: &mut Vec<u8>, members: &Map<String, Value>) {
    out.push(b'{');
    for (i, (key, value)) in members.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, key);
        out.push(b':');
        write_value(out, value);
    }
    out.push(b'}');
}

/// Appends a JSON string.
fn write_str(out: &mut Vec<u8>, text: &str) {
    if needs_escape(text.as_bytes()) {
        to_writer(out, text);
    } else {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    }
}

/// Whether `text` holds a byte JSON escapes: a control character, `"` or
/// `\\`.
fn needs_escape(text: &[u8]) -> bool {
    first_to_escape(text).is_some()
}

/// The index of the first byte of `text` that JSON escapes: a control
/// character, `"` or `\\`. Eight bytes at a time: a session's strings are
/// short, too short for vectors, and a byte at a time costs more than
/// serde_json's table.
fn first_to_escape(text: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH_BITS: u64 = ONES * 0x80;
    // The high bit of each byte of `word` below `n` (n <= 0x80) is set;
    // bits above the first such byte may be set wrongly (borrows), so only
    // the lowest set bit is exact.
    let below = |word: u64, n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word & HIGH_BITS;
    let equal = |word: u64, byte: u8| below(word ^ (ONES * u64::from(byte)), 1);
    let escapes = |word: u64| below(word, 0x20) | equal(word, b'"') | equal(word, b'\\');
    // Bytes are numbered from the lowest, so the first hit is the lowest bit.
    let first = |mask: u64| (mask.trailing_zeros() / 8) as usize;
    let (words, rest) = text.as_chunks::<8>();
    for (i, word) in words.iter().enumerate() {
        let mask = escapes(u64::from_le_bytes(*word));
        if mask != 0 {
            return Some(i * 8 + first(mask));
        }
    }
    if rest.is_empty() {
        return None;
    }
    // The last bytes. Not copied into a padded buffer: reading that buffer
    // back right after a copy of odd length stalls the processor.
    let (start, last) = match text.last_chunk::<8>() {
        // The last eight bytes: those before `rest` are known clean, so
        // their bits are clear (a false bit only follows a true one).
        Some(word) => (text.len() - 8, u64::from_le_bytes(*word)),
        // Shorter than a word: its bytes, then spaces.
        None => (
            0,
            rest.iter()
                .rev()
                .fold(ONES * u64::from(b' '), |word, &b| word << 8 | u64::from(b)),
        ),
    };
    let mask = escapes(last);
    (mask != 0).then(|| start + first(mask))
}

/// serde_json's compact writer, for what [`write_value`] leaves to it.
fn to_writer<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(out, value).expect("strings and numbers always serialise");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_edge_cases_are_decided_like_js() {
        let parse = |b: &[u8]| parse_json(b);
        assert_eq!(parse(b""), Ok(Value::Null));
        assert_eq!(parse(b"null"), Ok(Value::Null));
        assert_eq!(parse(b" {\"a\":1} "), Ok(serde_json::json!({"a": 1})));
        assert_eq!(parse(b"\"a\xffb\""), Ok(Value::from("a\u{fffd}b")));
        assert_eq!(parse(b"\xef\xbb\xbf[1]"), Ok(serde_json::json!([1])));
        assert_eq!(parse(b"\xef\xbb\xbf"), Ok(Value::Null));
        assert_eq!(
            parse(br#""lone \ud800 high""#),
            Ok(Value::from("lone \u{fffd} high"))
        );
        assert_eq!(
            parse(br#""lone \uDC00 low""#),
            Ok(Value::from("lone \u{fffd} low"))
        );
        assert_eq!(parse(br#""end \ud800""#), Ok(Value::from("end \u{fffd}")));
        assert_eq!(
            parse(br#""\ud800\ud83d\udd10""#),
            Ok(Value::from("\u{fffd}🔐"))
        );
        assert_eq!(parse(br#""\ud800\n""#), Ok(Value::from("\u{fffd}\n")));
        assert_eq!(
            parse(br#"{"\udfff":"\\ud800"}"#),
            Ok(serde_json::json!({"\u{fffd}": "\\ud800"}))
        );
        assert_eq!(parse(br#""pair \ud83d\udd10""#), Ok(Value::from("pair 🔐")));
        for bad in [
            &b"{"[..],
            b"{'a':1}",
            b"\xff",
            b"[1,]",
            b"\\ud800",
            b"\"\\u12\"",
        ] {
            assert_eq!(parse(bad), Err(IronError::InvalidJson), "{bad:?}");
        }
        // Already valid input is returned unchanged by the repair step.
        assert!(matches!(
            replace_lone_surrogates(br#""\ud83d\udd10\\ud800""#),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn json_repair_never_panics_and_keeps_valid_input() {
        const PIECES: &[&[u8]] = &[
            br"\ud800",
            br"\uDBFF",
            br"\udc00",
            br"\uDFFF",
            br"\ud83d",
            br"\udd10",
            br"\u00e9",
            br"\u12",
            br"\u",
            br"\\",
            br#"\""#,
            br"\n",
            br"\",
            b"\"",
            b"u",
            b"d8",
            b"a",
            b"{",
            b"}",
            b"[",
            b"]",
            b":",
            b",",
            b" ",
            b"\xff",
            b"\xed\xa0\x80",
            b"\xef\xbb\xbf",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % n as u64).unwrap()
        };
        let mut repaired_some = 0;
        for _ in 0..5_000 {
            let len = next(10);
            let input: Vec<u8> = (0..len)
                .flat_map(|_| PIECES[next(PIECES.len())])
                .copied()
                .collect();
            let quoted = [b"\"".as_slice(), &input, b"\""].concat();
            for bytes in [input, quoted] {
                let result = parse_json(&bytes);
                assert!(matches!(result, Ok(_) | Err(IronError::InvalidJson)));
                if let Ok(direct) = serde_json::from_slice::<Value>(&bytes) {
                    assert_eq!(result, Ok(direct));
                }
                if let Some(plain) = std::str::from_utf8(&bytes).ok().and_then(Plain::parse) {
                    assert_eq!(serde_json::from_slice::<Value>(&bytes).ok(), Some(plain));
                }
                if let Cow::Owned(repaired) = replace_lone_surrogates(&bytes) {
                    assert_eq!(repaired.len(), bytes.len(), "same length: 6 bytes for 6");
                    repaired_some += 1;
                }
            }
        }
        assert!(repaired_some > 100, "{repaired_some}");
    }
    proptest::proptest! {
        /// An object read member list first gives what serde_json's `Value`
        /// gives, duplicate keys (the later wins) and malformed text
        /// included.
        #[test]
        fn objects_read_in_one_pass_are_read_as_serde_json_reads_them(
            members in proptest::collection::vec(
                ("[a-c_]{0,2}", r#"(null|true|-?[0-9]{1,3}(\.[0-9])?|"[a-z\\"]{0,3}"|\[1,\{"k":2\}\]|\{\})"#),
                0..12,
            ),
            space in "[ \t\n\r]{0,2}",
            cut in proptest::option::of(0usize..200),
        ) {
            let body: Vec<String> = members
                .iter()
                .map(|(key, value)| format!("{space}\"{key}\"{space}:{space}{value}"))
                .collect();
            let mut text = format!("{space}{{{}}}{space}", body.join(","));
            if let Some(cut) = cut {
                text.truncate(cut.min(text.len()));
            }
            let ours = from_json_text(&text).ok();
            let theirs = serde_json::from_str::<Value>(&text).ok();
            if let Some(plain) = Plain::parse(&text) {
                proptest::prop_assert_eq!(Some(plain), theirs.clone());
            }
            proptest::prop_assert_eq!(ours, theirs);
        }

        /// The writer writes what serde_json writes, escapes, control
        /// characters, non-ASCII text, floats and nesting included.
        #[test]
        fn values_are_written_as_serde_json_writes_them(value in json_value()) {
            let mut ours = Vec::new();
            write_value(&mut ours, &value);
            proptest::prop_assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(&value).unwrap());
        }
    }

    proptest::proptest! {
        /// The word-at-a-time check agrees with a byte-at-a-time one.
        #[test]
        fn needs_escape_is_exact(
            mut text in proptest::collection::vec(0x20u8..=0xff, 0..40),
            extra in proptest::option::of((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>())),
        ) {
            if let Some((at, byte)) = extra {
                text.insert(at % (text.len() + 1), byte);
            }
            let bytewise = text.iter().position(|&b| b < 0x20 || b == b'"' || b == b'\\');
            proptest::prop_assert_eq!(first_to_escape(&text), bytewise);
        }
    }

    #[test]
    fn each_byte_to_escape_is_found_at_each_position() {
        for len in 1..=17 {
            for at in 0..len {
                for byte in (0u8..0x20).chain([b'"', b'\\']) {
                    let mut text = vec![b'a'; len];
                    text[at] = byte;
                    assert_eq!(
                        first_to_escape(&text),
                        Some(at),
                        "{byte:#x} at {at} of {len}"
                    );
                }
                let mut text = vec![0xff; len];
                text[at] = 0x20;
                assert!(!needs_escape(&text));
            }
        }
    }

    proptest::proptest! {
        /// Whatever the plain reader answers is serde_json's answer, and it
        /// answers for every value without floats or escapes, compact or
        /// pretty-printed.
        #[test]
        fn the_plain_reader_reads_as_serde_json_reads(value in json_value(), pretty: bool) {
            let text = if pretty {
                serde_json::to_string_pretty(&value).unwrap()
            } else {
                serde_json::to_string(&value).unwrap()
            };
            let theirs = serde_json::from_str::<Value>(&text).unwrap();
            match Plain::parse(&text) {
                Some(ours) => proptest::prop_assert_eq!(ours, theirs),
                None => proptest::prop_assert!(!is_plain(&value), "{}", text),
            }
        }
    }

    /// Whether the plain reader must read `value`'s serialisation.
    fn is_plain(value: &Value) -> bool {
        fn depth(value: &Value) -> usize {
            match value {
                Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
                Value::Object(members) => 1 + members.values().map(depth).max().unwrap_or(0),
                _ => 0,
            }
        }
        fn leaves(value: &Value) -> bool {
            match value {
                Value::String(text) => !needs_escape(text.as_bytes()),
                Value::Number(number) => {
                    number
                        .as_i64()
                        .is_some_and(|n| n != 0 && n.unsigned_abs() < 10u64.pow(18))
                        || number.as_u64().is_some_and(|n| n < 10u64.pow(18))
                }
                Value::Array(items) => items.iter().all(leaves),
                Value::Object(members) => members
                    .iter()
                    .all(|(key, value)| !needs_escape(key.as_bytes()) && leaves(value)),
                Value::Null | Value::Bool(_) => true,
            }
        }
        depth(value) <= 32 && leaves(value)
    }

    #[test]
    fn the_plain_reader_reads_a_session_and_leaves_the_rest_to_serde_json() {
        let record = r#"{"userId":"user-000042","roles":["admin","editor"],"cart":[101,-202,0],
            "count":7,"_expires":1800000000000,"ok":true,"no":false,"nil":null,"é":{"k":[]},"k":{}}"#;
        assert_eq!(Plain::parse(record), serde_json::from_str(record).ok());
        assert!(Plain::parse(record).is_some());
        for left in [
            r#"{"a":"\n"}"#,
            r#"{"a":1.5}"#,
            r#"{"a":1e3}"#,
            r#"{"a":-0}"#,
            r#"{"a":1234567890123456789}"#,
            "{\"a\":\"\u{1}\"}",
            r#"{"a":01}"#,
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{"a":tru}"#,
            r#"[1,]"#,
            r#"{"a":1}x"#,
            "\u{feff}{}",
            "",
        ] {
            assert_eq!(Plain::parse(left), None, "{left}");
        }
        let deep = format!("{}{}", "[".repeat(33), "]".repeat(33));
        assert_eq!(Plain::parse(&deep), None);
        assert_eq!(
            parse_json(deep.as_bytes()),
            Ok(serde_json::from_str(&deep).unwrap())
        );
        let deep_enough = format!("{}{}", "[".repeat(32), "]".repeat(32));
        assert_eq!(
            Plain::parse(&deep_enough),
            serde_json::from_str(&deep_enough).ok()
        );
        // Duplicate keys: the later wins, at any depth.
        assert_eq!(
            Plain::parse(r#"{"a":1,"b":{"c":1,"c":2},"a":3}"#),
            Some(serde_json::json!({"a": 3, "b": {"c": 2}}))
        );
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let text = prop_oneof![
            "[a-zA-Z0-9 _.-]{0,12}",
            "[\\x00-\\x1f\"\\\\/a\\u{7f}\\u{80}-\\u{10ffff}]{0,8}",
            any::<String>(),
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            text.clone().prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                proptest::collection::btree_map(text.clone(), inner, 0..6)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn strings_to_escape_are_escaped() {
        let value = serde_json::json!({"a\"b": ["\\", "\n\u{1}\u{7f}é/", "plain"], "n": [1.5, -2, null, true]});
        let mut out = Vec::new();
        write_value(&mut out, &value);
        // As JSON.stringify: control characters escaped, DEL, `/` and
        // non-ASCII text as they are.
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"a\\\"b\":[\"\\\\\",\"\\n\\u0001\u{7f}é/\",\"plain\"],\"n\":[1.5,-2,null,true]}"
        );
    }
}
