//! The dyndns2 return codes and how answers are written out.

use std::fmt;
use std::net::IpAddr;

/// A dyndns2 return code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// Update accepted.
    Good,
    /// The host already has this address.
    NoChg,
    /// Missing or wrong credentials.
    BadAuth,
    /// Not a valid fully qualified host name.
    NotFqdn,
    /// Host not configured, or not this account's.
    NoHost,
    /// More than 20 hosts in one request.
    NumHost,
    /// Host blocked for abuse.
    Abuse,
    /// The request itself is unusable (bad address, bad method, too large).
    BadAgent,
    /// Server-side DNS problem.
    DnsErr,
    /// Server fault; retry later.
    ServerError,
}

impl Code {
    /// The word clients look for.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Good => "good",
            Code::NoChg => "nochg",
            Code::BadAuth => "badauth",
            Code::NotFqdn => "notfqdn",
            Code::NoHost => "nohost",
            Code::NumHost => "numhost",
            Code::Abuse => "abuse",
            Code::BadAgent => "badagent",
            Code::DnsErr => "dnserr",
            Code::ServerError => "911",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer for one requested host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostAnswer {
    /// `good` with the addresses now requested.
    Good(Vec<IpAddr>),
    /// `nochg` with the addresses already known.
    NoChg(Vec<IpAddr>),
    /// Any other code, without addresses.
    Code(Code),
}

impl HostAnswer {
    /// The code of this answer.
    pub fn code(&self) -> Code {
        match self {
            HostAnswer::Good(_) => Code::Good,
            HostAnswer::NoChg(_) => Code::NoChg,
            HostAnswer::Code(c) => *c,
        }
    }
}

impl fmt::Display for HostAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (code, addrs) = match self {
            HostAnswer::Good(a) => (Code::Good, a.as_slice()),
            HostAnswer::NoChg(a) => (Code::NoChg, a.as_slice()),
            HostAnswer::Code(c) => (*c, &[][..]),
        };
        f.write_str(code.as_str())?;
        for (i, addr) in addrs.iter().enumerate() {
            f.write_str(if i == 0 { " " } else { "," })?;
            write!(f, "{addr}")?;
        }
        Ok(())
    }
}

/// Writes one line per answer, each ending in a newline.
pub fn render_body<'a>(answers: impl IntoIterator<Item = &'a HostAnswer>) -> String {
    let mut body = String::new();
    for a in answers {
        body.push_str(&a.to_string());
        body.push('\n');
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let v4: IpAddr = "198.51.100.7".parse().unwrap();
        let v6: IpAddr = "2001:db8::7".parse().unwrap();
        assert_eq!(HostAnswer::Good(vec![v4]).to_string(), "good 198.51.100.7");
        assert_eq!(
            HostAnswer::Good(vec![v4, v6]).to_string(),
            "good 198.51.100.7,2001:db8::7"
        );
        assert_eq!(HostAnswer::NoChg(vec![v6]).to_string(), "nochg 2001:db8::7");
        assert_eq!(HostAnswer::Code(Code::ServerError).to_string(), "911");
        let body = render_body(&[HostAnswer::Good(vec![v4]), HostAnswer::Code(Code::NoHost)]);
        assert_eq!(body, "good 198.51.100.7\nnohost\n");
    }
}
