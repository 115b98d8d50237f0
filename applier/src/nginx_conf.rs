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

/// Every `location` block, at any depth, whose path or pattern mentions
/// `path` (e.g. `nic/update` matches `location ~ ^/(nic/update|update)$`
/// and `location = /nic/update`).
pub fn locations_for<'a>(directives: &'a [Directive], path: &str) -> Vec<&'a Directive> {
    let mut out = Vec::new();
    for d in directives {
        if d.name == "location" && d.args.last().is_some_and(|a| a.contains(path)) {
            out.push(d);
        }
        if let Some(block) = &d.block {
            out.extend(locations_for(block, path));
        }
    }
    out
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
        let found = locations_for(&dirs, "nic/update");
        assert_eq!(found.len(), 1);
        let block = found[0].block.as_ref().unwrap();
        let pass = block.iter().find(|d| d.name == "proxy_pass").unwrap();
        assert_eq!(pass.args, vec!["http://127.0.0.1:3000"]);
        let empty = block
            .iter()
            .find(|d| d.args.first().is_some_and(|a| a == "Spin-Client-Addr"))
            .unwrap();
        assert_eq!(empty.args, vec!["Spin-Client-Addr", ""]);
        // the ACME challenge endpoints are passed the same way
        let acme = locations_for(&dirs, "acme/");
        assert_eq!(acme.len(), 1);
        let acme_block = acme[0].block.as_ref().unwrap();
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
        let text = "server {\n  # location /nic/update { proxy_pass http://x; }\n  location = '/nic/update' {\n    proxy_set_header \"X-A\" 'a b;{}';\n  }\n}\n";
        let dirs = parse(text).unwrap();
        let found = locations_for(&dirs, "nic/update");
        assert_eq!(found.len(), 1, "the commented one does not count");
        assert_eq!(found[0].args, vec!["=", "/nic/update"]);
        let block = found[0].block.as_ref().unwrap();
        assert_eq!(block[0].args, vec!["X-A", "a b;{}"]);
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
