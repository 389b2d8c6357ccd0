//! Label matchers as people write them in routes, inhibition rules, silences, the CLI and the
//! API, in Alertmanager's grammar (its `matcher/parse` package): `name=value`, `name!=value`,
//! `name=~regex`, `name!~regex`, values bare or double-quoted with escapes (`"a \"b\""`), and
//! lists `{a="b", c=~"d"}` (braces optional, a trailing comma allowed). Anything else is refused
//! with the byte position and the expected form. Regexes are anchored at both ends, as in
//! Alertmanager, and a missing label matches as the empty string.

use crate::alert::{Alert, Labels};
use regex::Regex;

/// What a matcher looks like, appended to every parse error.
pub const EXPECTED_FORM: &str =
    "expected name=\"value\", name!=\"value\", name=~\"regex\" or name!~\"regex\", or a list {a=\"b\", c=~\"d\"}";

/// What matchers read label values from: a label set, or an alert.
pub trait LabelSource {
    fn label(&self, name: &str) -> Option<&str>;
}

impl LabelSource for Labels {
    fn label(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// An alert's labels, plus its severity as `severity` (a label of that name set by the rule
/// wins). Severity is a field, not a label, so that an alert whose severity rises keeps its
/// fingerprint; matchers and `group_by` still see it.
impl LabelSource for Alert {
    fn label(&self, name: &str) -> Option<&str> {
        match self.labels.get(name) {
            Some(v) => Some(v),
            None if name == "severity" => Some(self.severity.as_str()),
            None => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// Why a matcher (or a list of them) does not parse: where in the input, what was found, what was
/// expected, and a correction when one is evident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatcherError {
    /// The input as given.
    pub input: String,
    /// Byte offset in `input` of the offending token (the input's length at its end).
    pub offset: usize,
    pub message: String,
    /// `did you mean …?`, when there is an evident correction.
    pub suggestion: Option<String>,
}

impl MatcherError {
    /// The message without the position, for callers that locate it themselves (the config's
    /// `path:line:col:`).
    pub fn located_message(&self) -> String {
        let mut s = format!("invalid matcher {:?}: {}", self.input, self.message);
        if let Some(d) = &self.suggestion {
            s.push_str(&format!("; did you mean `{d}`?"));
        } else if self.message.starts_with("unexpected") {
            s.push_str(&format!(" ({EXPECTED_FORM})"));
        }
        s
    }

    /// 1-based column (in characters) of the offending token in `input`.
    pub fn column(&self) -> usize {
        self.input
            .get(..self.offset.min(self.input.len()))
            .map_or(0, |s| s.chars().count())
            + 1
    }
}

impl std::fmt::Display for MatcherError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.located_message();
        // `invalid matcher "x", column 3: …`
        let (head, tail) = m.split_once(": ").unwrap_or((&m, ""));
        write!(f, "{head}, column {}: {tail}", self.column())
    }
}

impl From<MatcherError> for String {
    fn from(e: MatcherError) -> String {
        e.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Open,
    Close,
    Comma,
    Op(MatchOp),
    /// A double-quoted string, unescaped.
    Quoted(String),
    Bare(String),
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Open => "`{`".into(),
            Tok::Close => "`}`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Op(op) => format!("`{}`", op.as_str()),
            Tok::Quoted(s) => format!("{s:?}"),
            Tok::Bare(s) => format!("`{s}`"),
        }
    }
}

/// Characters that end a bare word (Alertmanager's `isReserved`): they need double quotes.
fn reserved(c: char) -> bool {
    c.is_whitespace() || "{}!=~,\\\"'`".contains(c)
}

/// Splits the input into (offset, token); the first lexical error ends the list.
/// A lexical error: byte offset and message.
type LexError = (usize, String);

fn lex(input: &str) -> (Vec<(usize, Tok)>, Option<LexError>) {
    let mut out = Vec::new();
    let mut it = input.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        let tok = match c {
            c if c.is_whitespace() => continue,
            '{' => Tok::Open,
            '}' => Tok::Close,
            ',' => Tok::Comma,
            '=' => {
                if it.next_if(|&(_, n)| n == '~').is_some() {
                    Tok::Op(MatchOp::Regex)
                } else {
                    Tok::Op(MatchOp::Equal)
                }
            }
            '!' => match it.next_if(|&(_, n)| n == '=' || n == '~') {
                Some((_, '=')) => Tok::Op(MatchOp::NotEqual),
                Some(_) => Tok::Op(MatchOp::NotRegex),
                None => {
                    return (
                        out,
                        Some((i, "unexpected `!`: expected `!=` or `!~`".into())),
                    )
                }
            },
            '"' => match unquote(i, &mut it) {
                Ok(s) => Tok::Quoted(s),
                Err(e) => return (out, Some(e)),
            },
            c if reserved(c) => {
                return (
                    out,
                    Some((
                        i,
                        format!("unexpected `{c}`: a value holding it must be double-quoted"),
                    )),
                )
            }
            c => {
                let mut s = String::from(c);
                while let Some((_, n)) = it.next_if(|&(_, n)| !reserved(n)) {
                    s.push(n);
                }
                Tok::Bare(s)
            }
        };
        out.push((i, tok));
    }
    (out, None)
}

/// Reads a double-quoted string whose opening quote is at `start`, with Go's escapes (what
/// Alertmanager's `strconv.Unquote` accepts): `\" \\ \n \t \r \a \b \f \v \xHH \ooo \uXXXX
/// \UXXXXXXXX`.
fn unquote(
    start: usize,
    it: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
) -> Result<String, (usize, String)> {
    let mut s = String::new();
    let mut bytes: Vec<u8> = Vec::new();
    let flush = |s: &mut String, bytes: &mut Vec<u8>, at: usize| -> Result<(), (usize, String)> {
        if !bytes.is_empty() {
            let t = std::str::from_utf8(bytes)
                .map_err(|_| (at, "a byte escape that is not UTF-8".to_string()))?;
            s.push_str(t);
            bytes.clear();
        }
        Ok(())
    };
    loop {
        let Some((i, c)) = it.next() else {
            return Err((start, "unterminated quoted string: no closing `\"`".into()));
        };
        match c {
            '"' => {
                flush(&mut s, &mut bytes, i)?;
                return Ok(s);
            }
            '\n' => return Err((i, "a newline inside a quoted string (write \\n)".into())),
            '\\' => {
                let Some((j, e)) = it.next() else {
                    return Err((start, "unterminated quoted string: no closing `\"`".into()));
                };
                let bad = || (i, format!("invalid escape `\\{e}` in a quoted string"));
                let hex = |it: &mut std::iter::Peekable<std::str::CharIndices<'_>>, n: usize| {
                    let mut v: u32 = 0;
                    for _ in 0..n {
                        let d = it
                            .next()
                            .and_then(|(_, d)| d.to_digit(16))
                            .ok_or_else(bad)?;
                        v = v * 16 + d;
                    }
                    Ok::<u32, (usize, String)>(v)
                };
                match e {
                    'x' => {
                        bytes.push(hex(it, 2)? as u8);
                        continue;
                    }
                    '0'..='7' => {
                        let mut v = e.to_digit(8).unwrap_or(0);
                        for _ in 0..2 {
                            let d = it.next().and_then(|(_, d)| d.to_digit(8)).ok_or_else(bad)?;
                            v = v * 8 + d;
                        }
                        if v > 255 {
                            return Err(bad());
                        }
                        bytes.push(v as u8);
                        continue;
                    }
                    _ => {}
                }
                flush(&mut s, &mut bytes, j)?;
                let ch = match e {
                    '"' => '"',
                    '\\' => '\\',
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    'a' => '\u{7}',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'v' => '\u{b}',
                    'u' => char::from_u32(hex(it, 4)?).ok_or_else(bad)?,
                    'U' => char::from_u32(hex(it, 8)?).ok_or_else(bad)?,
                    _ => return Err(bad()),
                };
                s.push(ch);
            }
            c => {
                flush(&mut s, &mut bytes, i)?;
                s.push(c);
            }
        }
    }
}

/// Parses one or more matchers in Alertmanager's grammar: `a=b`, `a="b", c=~"d"`, `{a="b",}`,
/// `{}` (none). Whitespace between tokens is ignored.
pub fn parse_matchers(input: &str) -> Result<Vec<Matcher>, MatcherError> {
    let (toks, lex_err) = lex(input);
    let end = input.len();
    let err = |offset: usize, message: String| MatcherError {
        input: input.to_string(),
        offset,
        message,
        suggestion: None,
    };
    // The token at `i`, or the lexical error / end of input standing there.
    let at = |i: usize| -> Result<Option<&(usize, Tok)>, MatcherError> {
        match toks.get(i) {
            Some(t) => Ok(Some(t)),
            None => match &lex_err {
                Some((o, m)) => Err(err(*o, m.clone())),
                None => Ok(None),
            },
        }
    };
    let unexpected = |t: Option<&(usize, Tok)>, expected: &str| match t {
        Some((o, t)) => err(
            *o,
            format!("unexpected {}: expected {expected}", t.describe()),
        ),
        None => err(end, format!("unexpected end of input: expected {expected}")),
    };
    let mut out = Vec::new();
    let mut i = 0;
    let open = matches!(at(0)?, Some((_, Tok::Open)));
    if open {
        i += 1;
    }
    loop {
        match at(i)? {
            None => break,
            Some((_, Tok::Close)) => break,
            _ => {}
        }
        let (name_at, name) = match at(i)? {
            Some((o, Tok::Bare(s) | Tok::Quoted(s))) => (*o, s.clone()),
            t => return Err(unexpected(t, "a label name")),
        };
        i += 1;
        let op = match at(i)? {
            Some((_, Tok::Op(op))) => *op,
            t => {
                return Err(unexpected(
                    t,
                    "an operator such as `=`, `!=`, `=~` or `!~` after the label name",
                ))
            }
        };
        i += 1;
        let value_at = toks.get(i).map_or(end, |(o, _)| *o);
        let value = match at(i)? {
            Some((_, Tok::Bare(s) | Tok::Quoted(s))) => s.clone(),
            t => {
                let mut e = unexpected(t, "a label value");
                // `severity==critical`: the operator doubled.
                if let (Some((o, Tok::Op(MatchOp::Equal))), MatchOp::Equal) = (t, op) {
                    let rest = input[o + 1..].trim();
                    let rest = rest.strip_prefix('"').unwrap_or(rest);
                    let rest = rest.strip_suffix('"').unwrap_or(rest);
                    if !rest.is_empty() && !rest.contains(['"', ',', '}', '{']) {
                        e.suggestion = Some(
                            Matcher::new(&name, MatchOp::Equal, rest)
                                .map_or_else(|_| format!("{name}=\"{rest}\""), |m| m.to_string()),
                        );
                    }
                }
                return Err(e);
            }
        };
        i += 1;
        let m = Matcher::new(&name, op, &value).map_err(|m| {
            // A bad name is at the name, a bad regex at the value, with the value escaped as
            // the correction (what was likely meant is the literal text).
            if m.starts_with("invalid label name") {
                err(name_at, m)
            } else {
                let mut e = err(value_at, m);
                e.suggestion = Matcher::new(&name, op, regex::escape(&value))
                    .ok()
                    .map(|m| m.to_string());
                e
            }
        })?;
        out.push(m);
        match at(i)? {
            None | Some((_, Tok::Close)) => break,
            Some((_, Tok::Comma)) => i += 1,
            t => {
                let mut e = unexpected(t, "a comma or a closing brace");
                if let Some((_, Tok::Bare(_))) = t {
                    // `team=a b`: a value with spaces.
                    let last = out.last().cloned();
                    if let Some(m) = last {
                        let v = input[value_at..].trim_end().trim_end_matches('}');
                        if m.op == MatchOp::Equal && !v.contains(['"', ',', '=']) {
                            e.suggestion = Some(format!("{}=\"{}\"", m.name, v.trim()));
                        }
                    }
                }
                return Err(e);
            }
        }
    }
    match at(i)? {
        Some((_, Tok::Close)) if open => i += 1,
        Some((o, Tok::Close)) => {
            return Err(err(*o, "unexpected `}`: there is no opening brace".into()))
        }
        t if open => {
            let mut e = unexpected(t, "a closing brace");
            if t.is_none() {
                e.suggestion = Some(format!("{}}}", input.trim_end()));
            }
            return Err(e);
        }
        _ => {}
    }
    match at(i)? {
        None => Ok(out),
        t => Err(unexpected(t, "the end of the matchers")),
    }
}

/// Whether a label name is Prometheus's `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn valid_label_name(name: &str) -> bool {
    let mut c = name.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    re: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.op == o.op && self.value == o.value
    }
}

impl Matcher {
    pub fn new(
        name: impl Into<String>,
        op: MatchOp,
        value: impl Into<String>,
    ) -> Result<Self, String> {
        let name = name.into();
        let value = value.into();
        if !valid_label_name(&name) {
            return Err(format!(
                "invalid label name {name:?} in matcher (letters, digits and _, not starting with a digit)"
            ));
        }
        let re = match op {
            MatchOp::Regex | MatchOp::NotRegex => {
                Some(Regex::new(&format!("^(?:{value})$")).map_err(|e| {
                    format!(
                        "invalid regex {value:?} for label {name:?}: {}",
                        regex_error(&e)
                    )
                })?)
            }
            _ => None,
        };
        Ok(Matcher {
            name,
            op,
            value,
            re,
        })
    }

    /// Parses exactly one matcher (`team=db`, `team="a b"`, `{team=~"db|web"}`), as
    /// `parse_matchers` does.
    pub fn parse_one(s: &str) -> Result<Self, MatcherError> {
        let mut v = parse_matchers(s)?;
        match v.len() {
            1 => Ok(v.remove(0)),
            n => Err(MatcherError {
                input: s.to_string(),
                offset: 0,
                message: if n == 0 {
                    "no matcher".into()
                } else {
                    format!("expected one matcher, found {n}")
                },
                suggestion: None,
            }),
        }
    }

    /// `parse_one`, its error as text.
    pub fn parse(s: &str) -> Result<Self, String> {
        Matcher::parse_one(s).map_err(|e| e.to_string())
    }

    pub fn matches(&self, labels: &impl LabelSource) -> bool {
        let v = labels.label(&self.name).unwrap_or("");
        match self.op {
            MatchOp::Equal => v == self.value,
            MatchOp::NotEqual => v != self.value,
            MatchOp::Regex => self.re.as_ref().is_some_and(|r| r.is_match(v)),
            MatchOp::NotRegex => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }
}

/// The gist of a `regex` error (its last line, without the `error: ` prefix).
pub fn regex_error(e: &regex::Error) -> String {
    first_line(&e.to_string())
        .trim_start_matches("error: ")
        .to_string()
}

fn first_line(s: &str) -> String {
    s.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .to_string()
}

/// `name="value"`, the value quoted with the escapes `parse_matchers` reads back.
impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}\"", self.name, self.op.as_str())?;
        for c in self.value.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\t' => f.write_str("\\t")?,
                '\r' => f.write_str("\\r")?,
                c if c.is_control() => write!(f, "\\u{:04x}", c as u32)?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

/// All must match (an empty list matches everything).
pub fn all_match(matchers: &[Matcher], labels: &impl LabelSource) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_four_operators() {
        let labels = l(&[("severity", "critical"), ("team", "db")]);
        assert!(Matcher::parse("severity=critical")
            .unwrap()
            .matches(&labels));
        assert!(Matcher::parse("severity!=warning")
            .unwrap()
            .matches(&labels));
        assert!(Matcher::parse("team=~d.").unwrap().matches(&labels));
        assert!(
            !Matcher::parse("team=~d").unwrap().matches(&labels),
            "regexes are anchored"
        );
        assert!(Matcher::parse("team!~web|api").unwrap().matches(&labels));
        assert!(
            Matcher::parse("missing=\"\"").unwrap().matches(&labels),
            "a missing label is empty"
        );
        assert!(Matcher::parse(r#"team = "db""#).unwrap().matches(&labels));
    }

    #[test]
    fn quotes_are_stripped_and_escapes_read() {
        let m = Matcher::parse(r#"severity="critical""#).unwrap();
        assert_eq!(m.value, "critical");
        let m = Matcher::parse(r#"msg="say \"hi\"\n\\ \u00e9 \x41""#).unwrap();
        assert_eq!(m.value, "say \"hi\"\n\\ é A");
        let m = Matcher::parse(r#""team"=~"a,b|c{2}""#).unwrap();
        assert_eq!((m.name.as_str(), m.value.as_str()), ("team", "a,b|c{2}"));
    }

    #[test]
    fn lists_with_and_without_braces() {
        let ms = parse_matchers(r#"{a="b", c=~"d"}"#).unwrap();
        assert_eq!(ms.len(), 2);
        assert_eq!(ms[1].op, MatchOp::Regex);
        assert_eq!(parse_matchers("a=b,c!=d,").unwrap().len(), 2);
        assert_eq!(parse_matchers("{a=b,}").unwrap().len(), 1);
        assert!(parse_matchers("{}").unwrap().is_empty());
        assert!(parse_matchers("").unwrap().is_empty());
    }

    /// Each mistake with its position (byte offset) and message, as Alertmanager's parse tests
    /// list them.
    #[test]
    fn mistakes_are_refused_with_their_position() {
        let cases: &[(&str, usize, &str)] = &[
            (
                "severity==critical",
                9,
                "unexpected `=`: expected a label value",
            ),
            (
                "severity",
                8,
                "unexpected end of input: expected an operator such as `=`, `!=`, `=~` or `!~` after the label name",
            ),
            ("{a=b", 4, "unexpected end of input: expected a closing brace"),
            ("a=b}", 3, "unexpected `}`: there is no opening brace"),
            ("a=b c=d", 4, "unexpected `c`: expected a comma or a closing brace"),
            ("a=\"b", 2, "unterminated quoted string: no closing `\"`"),
            ("a!b", 1, "unexpected `!`: expected `!=` or `!~`"),
            ("a=\\d", 2, "unexpected `\\`: a value holding it must be double-quoted"),
            ("a=\"\\q\"", 3, "invalid escape `\\q` in a quoted string"),
            ("=b", 0, "unexpected `=`: expected a label name"),
            ("a=", 2, "unexpected end of input: expected a label value"),
            ("a=b,,", 4, "unexpected `,`: expected a label name"),
            ("{a=b}x=y", 5, "unexpected `x`: expected the end of the matchers"),
        ];
        for (input, offset, message) in cases {
            let e = parse_matchers(input).unwrap_err();
            assert_eq!(
                (e.offset, e.message.as_str()),
                (*offset, *message),
                "{input}"
            );
        }
        let e = parse_matchers("severity==critical").unwrap_err();
        assert_eq!(e.suggestion.as_deref(), Some("severity=\"critical\""));
        assert_eq!(
            e.to_string(),
            "invalid matcher \"severity==critical\", column 10: unexpected `=`: expected a label value; did you mean `severity=\"critical\"`?"
        );
        let e = parse_matchers("job=~Worker(Down").unwrap_err();
        assert_eq!(
            (e.offset, e.suggestion.as_deref()),
            (5, Some(r#"job=~"Worker\\(Down""#))
        );
    }

    #[test]
    fn bad_matchers_say_why() {
        assert!(Matcher::parse("team")
            .unwrap_err()
            .contains("expected an operator"));
        assert!(Matcher::parse("team=~(")
            .unwrap_err()
            .contains("invalid regex"));
        assert!(Matcher::parse("te am=x").is_err());
        assert!(Matcher::parse("1team=x")
            .unwrap_err()
            .contains("invalid label name"));
        assert!(Matcher::parse("a=b,c=d")
            .unwrap_err()
            .contains("expected one matcher, found 2"));
    }

    #[test]
    fn display_round_trips() {
        for s in ["team=~db|web", r#"msg="a \"b\" \\ c\nd""#, "x!~\"a{1,2}\""] {
            let m = Matcher::parse(s).unwrap();
            assert_eq!(Matcher::parse(&m.to_string()).unwrap(), m, "{s}");
        }
        assert_eq!(
            Matcher::parse("team=~db|web").unwrap().to_string(),
            r#"team=~"db|web""#
        );
    }

    #[test]
    fn no_input_panics() {
        for s in [
            "\"",
            "\\",
            "{",
            "}",
            "!",
            "=~",
            "a=\"\\u12",
            "a=\"\\x\"",
            "é=é",
            "{a=\"\u{0}\"}",
            "a=\"\\777\"",
        ] {
            let _ = parse_matchers(s);
        }
    }
}
