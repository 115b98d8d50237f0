//! Just enough of nginx's configuration syntax for `doctor`: the
//! "Additional nginx directives" Plesk keeps per domain are parsed into
//! directives and blocks (comments, quoting and nesting as nginx reads
//! them), so the check looks at what nginx would see, not at text that
//! merely looks similar (a commented-out line, a directive in another
//! block).

/// One directive: `name args...;` or `name args... { block }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The directive's name, e.g. `location` or `proxy_pass`.
    pub name: String,
    /// Its arguments, unquoted.
    pub args: Vec<String>,
    /// The directives inside its block, if it has one.
    pub block: Option<Vec<Directive>>,
}

/// Why a file could not be read as nginx configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NginxSyntaxError {
    /// A quoted string runs to the end of the file.
    #[error("line {0}: unterminated quoted string")]
    UnterminatedQuote(usize),
    /// A `}` without a block to close.
    #[error("line {0}: unexpected \"}}\"")]
    UnexpectedClose(usize),
    /// A block not closed at the end of the file.
    #[error("unexpected end of file: a block is not closed")]
    UnclosedBlock,
    /// Words without a terminating `;` (or a `{` without a name).
    #[error("line {0}: a directive is not terminated by \";\"")]
    Unterminated(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Semicolon,
    Open,
    Close,
}

fn tokenize(text: &str) -> Result<Vec<(Token, usize)>, NginxSyntaxError> {
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                        break;
                    }
                }
            }
            ';' => tokens.push((Token::Semicolon, line)),
            '{' => tokens.push((Token::Open, line)),
            '}' => tokens.push((Token::Close, line)),
            '"' | '\'' => {
                let start = line;
                let mut word = String::new();
                let mut closed = false;
                while let Some(d) = chars.next() {
                    match d {
                        '\\' => {
                            if let Some(e) = chars.next() {
                                if e == '\n' {
                                    line += 1;
                                }
                                word.push(e);
                            }
                        }
                        d if d == c => {
                            closed = true;
                            break;
                        }
                        d => {
                            if d == '\n' {
                                line += 1;
                            }
                            word.push(d);
                        }
                    }
                }
                if !closed {
                    return Err(NginxSyntaxError::UnterminatedQuote(start));
                }
                tokens.push((Token::Word(word), start));
            }
            c => {
                let mut word = String::from(c);
                while let Some(&d) = chars.peek() {
                    if d.is_whitespace() || matches!(d, ';' | '{' | '}' | '"' | '\'') {
                        break;
                    }
                    word.push(d);
                    chars.next();
                }
                tokens.push((Token::Word(word), line));
            }
        }
    }
    Ok(tokens)
}

/// Parses nginx configuration text into its directives.
pub fn parse(text: &str) -> Result<Vec<Directive>, NginxSyntaxError> {
    let tokens = tokenize(text)?;
    let mut stack: Vec<(Directive, Vec<Directive>)> = Vec::new();
    let mut top = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut last_line = 1;
    for (token, line) in tokens {
        last_line = line;
        match token {
            Token::Word(w) => words.push(w),
            Token::Semicolon | Token::Open => {
                let mut it = std::mem::take(&mut words).into_iter();
                let Some(name) = it.next() else {
                    return Err(NginxSyntaxError::Unterminated(line));
                };
                let directive = Directive {
                    name,
                    args: it.collect(),
                    block: None,
                };
                if token == Token::Open {
                    stack.push((directive, Vec::new()));
                } else {
                    match stack.last_mut() {
                        Some((_, children)) => children.push(directive),
                        None => top.push(directive),
                    }
                }
            }
            Token::Close => {
                if !words.is_empty() {
                    return Err(NginxSyntaxError::Unterminated(line));
                }
                let Some((mut directive, children)) = stack.pop() else {
                    return Err(NginxSyntaxError::UnexpectedClose(line));
                };
                directive.block = Some(children);
                match stack.last_mut() {
                    Some((_, siblings)) => siblings.push(directive),
                    None => top.push(directive),
                }
            }
        }
    }
    if !words.is_empty() {
        return Err(NginxSyntaxError::Unterminated(last_line));
    }
    if !stack.is_empty() {
        return Err(NginxSyntaxError::UnclosedBlock);
    }
    Ok(top)
}

/// How a `location` matches a request path, read from its arguments as
/// nginx reads them (`location = /x`, `location =/x`, `^~`, `~`, `~*`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum LocationMatch {
    /// `=`: this path only.
    Exact(String),
    /// A prefix; with `^~` a match stops the search for regexes.
    Prefix { path: String, final_match: bool },
    /// `~` (case-sensitive) or `~*` (case-insensitive).
    Regex { pattern: String, caseless: bool },
    /// `@name`: reached only by internal redirects.
    Named,
}

impl LocationMatch {
    fn read(args: &[String]) -> Option<LocationMatch> {
        const MODIFIERS: [&str; 4] = ["=", "^~", "~*", "~"];
        let (modifier, path) = match args {
            [modifier, path] if MODIFIERS.contains(&modifier.as_str()) => {
                (modifier.as_str(), path.as_str())
            }
            // nginx also takes the modifier joined to the path: `=/x`, `~*\.js$`
            [name] => MODIFIERS
                .iter()
                .find_map(|m| name.strip_prefix(m).map(|p| (*m, p)))
                .unwrap_or(("", name.as_str())),
            _ => return None,
        };
        let path = path.to_string();
        Some(match modifier {
            "=" => LocationMatch::Exact(path),
            "^~" => LocationMatch::Prefix {
                path,
                final_match: true,
            },
            "~*" => LocationMatch::Regex {
                pattern: path,
                caseless: true,
            },
            "~" => LocationMatch::Regex {
                pattern: path,
                caseless: false,
            },
            _ if path.starts_with('@') => LocationMatch::Named,
            _ => LocationMatch::Prefix {
                path,
                final_match: false,
            },
        })
    }

    /// Whether a regex location matches `uri`. A pattern the `regex` crate
    /// cannot compile (a PCRE-only construct such as a lookahead) counts as
    /// no match.
    fn regex_matches(pattern: &str, caseless: bool, uri: &str) -> bool {
        regex::RegexBuilder::new(pattern)
            .case_insensitive(caseless)
            .build()
            .is_ok_and(|re| re.is_match(uri))
    }
}

/// The `location` among `directives` (one server's, not nested ones) that
/// nginx picks for a request to `uri`: an exact match; else the longest
/// matching prefix if it is `^~`; else the first matching regex in the
/// order written; else the longest matching prefix.
pub fn location_serving<'a>(directives: &'a [Directive], uri: &str) -> Option<&'a Directive> {
    let locations: Vec<(&Directive, LocationMatch)> = directives
        .iter()
        .filter(|d| d.name == "location")
        .filter_map(|d| LocationMatch::read(&d.args).map(|m| (d, m)))
        .collect();
    if let Some((d, _)) = locations
        .iter()
        .find(|(_, m)| matches!(m, LocationMatch::Exact(p) if p == uri))
    {
        return Some(d);
    }
    let longest_prefix = locations
        .iter()
        .filter_map(|(d, m)| match m {
            LocationMatch::Prefix { path, final_match } if uri.starts_with(path.as_str()) => {
                Some((*d, path.len(), *final_match))
            }
            _ => None,
        })
        .max_by_key(|(_, len, _)| *len);
    if let Some((d, _, true)) = longest_prefix {
        return Some(d);
    }
    let regex = locations.iter().find(|(_, m)| match m {
        LocationMatch::Regex { pattern, caseless } => {
            LocationMatch::regex_matches(pattern, *caseless, uri)
        }
        _ => false,
    });
    regex.map(|(d, _)| *d).or(longest_prefix.map(|(d, _, _)| d))
}

/// An nginx time value (`30s`, `1m30s`, `500ms`, a bare number is seconds).
pub fn parse_time(text: &str) -> Option<std::time::Duration> {
    use std::time::Duration;
    if text.is_empty() {
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok().map(Duration::from_secs);
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let value: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| !b.is_ascii_digit()).count();
        let seconds = match &rest[..unit_len] {
            "ms" => {
                total += Duration::from_millis(value);
                rest = &rest[unit_len..];
                continue;
            }
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            "M" => 30 * 86_400,
            "y" => 365 * 86_400,
            _ => return None,
        };
        total += Duration::from_secs(value.checked_mul(seconds)?);
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// How an expected directive's arguments are compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgsMatch {
    /// The arguments are exactly these; the first (a header name) is
    /// compared ignoring case.
    Exact(Vec<String>),
    /// The first argument is this URL, or this URL followed by a path.
    Url(String),
    /// A header (name ignoring case) set to a secret value, which messages
    /// show as `shown` instead.
    Secret {
        /// The header's name.
        header: String,
        /// Its value.
        value: String,
        /// What messages say instead of the value.
        shown: &'static str,
    },
}

/// A directive a block must contain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedDirective {
    /// The directive's name.
    pub name: &'static str,
    /// Its arguments.
    pub args: ArgsMatch,
    /// Why it is needed, for the message when it is missing.
    pub why: &'static str,
}

impl ExpectedDirective {
    /// True when `d` is this directive.
    pub fn matches(&self, d: &Directive) -> bool {
        if d.name != self.name {
            return false;
        }
        match &self.args {
            ArgsMatch::Exact(want) => {
                d.args.len() == want.len()
                    && d.args.iter().zip(want).enumerate().all(|(i, (a, w))| {
                        if i == 0 {
                            a.eq_ignore_ascii_case(w)
                        } else {
                            a == w
                        }
                    })
            }
            ArgsMatch::Url(url) => d.args.first().is_some_and(|a| {
                a.strip_prefix(url.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            }),
            ArgsMatch::Secret { header, value, .. } => {
                d.args.len() == 2 && d.args[0].eq_ignore_ascii_case(header) && d.args[1] == *value
            }
        }
    }

    /// The directive as one would write it.
    pub fn display(&self) -> String {
        let args = match &self.args {
            ArgsMatch::Exact(a) => a
                .iter()
                .map(|s| {
                    if s.is_empty() || s.contains(char::is_whitespace) {
                        format!("\"{s}\"")
                    } else {
                        s.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
            ArgsMatch::Url(u) => u.clone(),
            ArgsMatch::Secret { header, shown, .. } => format!("{header} \"{shown}\""),
        };
        format!("{} {args};", self.name)
    }
}

/// The expected directives `block` lacks.
pub fn missing<'a>(
    block: &[Directive],
    expected: &'a [ExpectedDirective],
) -> Vec<&'a ExpectedDirective> {
    expected
        .iter()
        .filter(|e| !block.iter().any(|d| e.matches(d)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../deploy/nginx/plesk-additional-directives.conf");

    #[test]
    fn parses_the_shipped_directives() {
        let dirs = parse(SHIPPED).unwrap();
        let found = location_serving(&dirs, "/nic/update").unwrap();
        for uri in ["/update", "/status", "/status.json"] {
            assert_eq!(location_serving(&dirs, uri), Some(found), "{uri}");
        }
        assert_eq!(location_serving(&dirs, "/nic/update2"), None);
        let block = found.block.as_ref().unwrap();
        let pass = block.iter().find(|d| d.name == "proxy_pass").unwrap();
        assert_eq!(pass.args, vec!["http://127.0.0.1:3000"]);
        let empty = block
            .iter()
            .find(|d| d.args.first().is_some_and(|a| a == "Spin-Client-Addr"))
            .unwrap();
        assert_eq!(empty.args, vec!["Spin-Client-Addr", ""]);
        // the ACME challenge endpoints are passed the same way
        let acme = location_serving(&dirs, "/acme/present").unwrap();
        for uri in ["/acme/cleanup", "/acme/update"] {
            assert_eq!(location_serving(&dirs, uri), Some(acme), "{uri}");
        }
        assert_ne!(acme, found);
        let acme_block = acme.block.as_ref().unwrap();
        for d in block {
            assert!(
                acme_block.contains(d),
                "the acme location lacks {} {:?}",
                d.name,
                d.args
            );
        }
    }

    #[test]
    fn comments_quotes_and_nesting() {
        let text = "# location /nic/update { proxy_pass http://x; }\nlocation = '/nic/update' {\n  proxy_set_header \"X-A\" 'a b;{}';\n  if ($x) { return 403; }\n}\n";
        let dirs = parse(text).unwrap();
        assert_eq!(dirs.len(), 1, "the commented one does not count");
        let found = location_serving(&dirs, "/nic/update").unwrap();
        assert_eq!(found.args, vec!["=", "/nic/update"]);
        let block = found.block.as_ref().unwrap();
        assert_eq!(block[0].args, vec!["X-A", "a b;{}"]);
        assert_eq!(block[1].block.as_ref().unwrap()[0].args, vec!["403"]);
    }

    /// The location nginx picks, by its arguments joined.
    fn picked(text: &str, uri: &str) -> Option<String> {
        let dirs = parse(text).unwrap();
        location_serving(&dirs, uri).map(|d| d.args.join(" "))
    }

    #[test]
    fn locations_are_picked_in_nginx_order() {
        let text = "location / { }\nlocation /acme/ { }\nlocation ~ ^/acme/(present|cleanup)$ { }\nlocation ~* /PRESENT$ { }\nlocation ^~ /static/ { }\nlocation ~ \\.json$ { }\nlocation =/status { }\nlocation @fallback { }\n";
        let cases = [
            // exact wins over everything
            ("/status", "=/status"),
            // a regex wins over a plain prefix, the first one written
            ("/acme/present", "~ ^/acme/(present|cleanup)$"),
            ("/acme/cleanup", "~ ^/acme/(present|cleanup)$"),
            // ~* ignores case
            ("/x/present", "~* /PRESENT$"),
            // no regex matches: the longest prefix
            ("/acme/update", "/acme/"),
            ("/nic/update", "/"),
            // ^~ stops the regex search
            ("/static/a.json", "^~ /static/"),
            ("/other/a.json", "~ \\.json$"),
        ];
        for (uri, want) in cases {
            assert_eq!(picked(text, uri).as_deref(), Some(want), "{uri}");
        }
        // no location, and a pattern the regex crate cannot compile
        assert_eq!(picked("location /acme/ { }", "/nic/update"), None);
        assert_eq!(
            picked("location ~ ^/(?!x)nic/update$ { }", "/nic/update"),
            None
        );
        // nested locations are not the server's
        assert_eq!(
            picked(
                "location /a/ { location /a/nic/update { } }",
                "/a/nic/update"
            )
            .as_deref(),
            Some("/a/")
        );
    }

    #[test]
    fn nginx_times() {
        use std::time::Duration;
        for (text, want) in [
            ("30", Some(Duration::from_secs(30))),
            ("30s", Some(Duration::from_secs(30))),
            ("1m30s", Some(Duration::from_secs(90))),
            ("2h", Some(Duration::from_secs(7200))),
            ("500ms", Some(Duration::from_millis(500))),
            ("1s500ms", Some(Duration::from_millis(1500))),
            ("", None),
            ("s", None),
            ("30x", None),
            ("-5s", None),
        ] {
            assert_eq!(parse_time(text), want, "{text:?}");
        }
    }

    #[test]
    fn syntax_errors_name_the_line() {
        assert_eq!(
            parse("a b;\nc \"d;\n"),
            Err(NginxSyntaxError::UnterminatedQuote(2))
        );
        assert_eq!(parse("a;\n}\n"), Err(NginxSyntaxError::UnexpectedClose(2)));
        assert_eq!(parse("a {\n b;\n"), Err(NginxSyntaxError::UnclosedBlock));
        assert_eq!(parse("a b\n"), Err(NginxSyntaxError::Unterminated(1)));
        assert_eq!(parse("{ }"), Err(NginxSyntaxError::Unterminated(1)));
    }

    #[test]
    fn expectations_match_exactly() {
        let block = parse(
            "proxy_pass http://127.0.0.1:3000/x;\nproxy_set_header x-forwarded-for $remote_addr;\n",
        )
        .unwrap();
        let pass = ExpectedDirective {
            name: "proxy_pass",
            args: ArgsMatch::Url("http://127.0.0.1:3000".into()),
            why: "",
        };
        let other_port = ExpectedDirective {
            name: "proxy_pass",
            args: ArgsMatch::Url("http://127.0.0.1:300".into()),
            why: "",
        };
        let xff = ExpectedDirective {
            name: "proxy_set_header",
            args: ArgsMatch::Exact(vec!["X-Forwarded-For".into(), "$remote_addr".into()]),
            why: "",
        };
        let appended = ExpectedDirective {
            name: "proxy_set_header",
            args: ArgsMatch::Exact(vec![
                "X-Forwarded-For".into(),
                "$proxy_add_x_forwarded_for".into(),
            ]),
            why: "",
        };
        let secret = ExpectedDirective {
            name: "proxy_set_header",
            args: ArgsMatch::Secret {
                header: "X-Secret".into(),
                value: "s3cret".into(),
                shown: "<the secret>",
            },
            why: "",
        };
        let expected = [pass, other_port, xff, appended, secret];
        let missing: Vec<String> = missing(&block, &expected)
            .iter()
            .map(|e| e.display())
            .collect();
        assert_eq!(
            missing,
            vec![
                "proxy_pass http://127.0.0.1:300;",
                "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
                "proxy_set_header X-Secret \"<the secret>\";"
            ]
        );
        let with_secret = parse("proxy_set_header x-secret s3cret;").unwrap();
        assert!(expected[4].matches(&with_secret[0]));
        let wrong = parse("proxy_set_header X-Secret s3cre;").unwrap();
        assert!(!expected[4].matches(&wrong[0]));
    }
}
