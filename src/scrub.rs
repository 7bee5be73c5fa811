//! Secret scrubbing: finds credentials in text and replaces each with `<REDACTED:rule>`, with a
//! report of where (line, rule) that never contains the secret itself.
//!
//! Used by the dataset export and by anything that sends text off the machine: the remote
//! backend must pass every prompt through [`scrub_text`] first. Rules cover provider tokens
//! (AWS, GitHub, GitLab, Slack, Stripe, OpenAI, Anthropic, Google), JWTs, private key blocks,
//! passwords in assignments and connection strings, `.env`-style files ([`scrub_file`]) and
//! high-entropy values of credential-like names. All rules run on the original text; where two
//! matches overlap the earlier rule (the more specific one) wins.

use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

/// One redaction: where, and by which rule. Never the secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// File it was found in, when known (set by callers that scrub files).
    pub file: Option<String>,
    /// 1-based line of the start of the secret.
    pub line: usize,
    pub rule: &'static str,
}

struct Rule {
    name: &'static str,
    regex: Regex,
    /// Capture group holding the secret (0 = whole match).
    group: usize,
    /// Extra check on the captured value.
    accept: fn(&str) -> bool,
}

fn any(_: &str) -> bool {
    true
}

fn not_placeholder(value: &str) -> bool {
    let first = value.chars().next().unwrap_or('<');
    !matches!(first, '<' | '$' | '{' | '*' | '%')
        && !value.eq_ignore_ascii_case("none")
        && !value.eq_ignore_ascii_case("null")
        && value.chars().any(|c| c != 'x' && c != 'X')
}

/// Random-looking: long, varied, with letters and digits (identifiers like `context_tokens`
/// have no digits; real keys almost always do).
fn high_entropy(value: &str) -> bool {
    not_placeholder(value)
        && value.len() >= 16
        && value.bytes().any(|b| b.is_ascii_digit())
        && value.bytes().any(|b| b.is_ascii_alphabetic())
        && shannon_entropy(value) >= 3.5
}

/// Bits per character of `value`'s character distribution.
pub fn shannon_entropy(value: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    for c in value.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
    }
    let total = value.chars().count() as f64;
    counts
        .values()
        .map(|&n| {
            let p = n as f64 / total;
            -p * p.log2()
        })
        .sum()
}

fn rule(name: &'static str, pattern: &str, group: usize, accept: fn(&str) -> bool) -> Rule {
    Rule {
        name,
        // The patterns are constants checked by the tests; a bad one is a programming error.
        regex: Regex::new(pattern).unwrap_or_else(|e| panic!("scrub rule {name}: {e}")),
        group,
        accept,
    }
}

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    vec![
        rule(
            "private_key",
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----",
            0,
            any,
        ),
        rule(
            "aws_access_key",
            r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)[0-9A-Z]{16}\b",
            0,
            any,
        ),
        rule(
            "aws_secret_key",
            r#"(?i)aws_?secret_?(?:access_?)?key["']?\s*[:=]\s*["']?([A-Za-z0-9/+=]{40})\b"#,
            1,
            any,
        ),
        rule(
            "github_token",
            r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b",
            0,
            any,
        ),
        rule("gitlab_token", r"\bglpat-[A-Za-z0-9_\-]{20,}", 0, any),
        rule("slack_token", r"\bxox[abposr]-[A-Za-z0-9\-]{10,}", 0, any),
        rule(
            "slack_webhook",
            r"https://hooks\.slack\.com/services/[A-Za-z0-9_/]{20,}",
            0,
            any,
        ),
        rule(
            "stripe_key",
            r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}",
            0,
            any,
        ),
        rule("anthropic_key", r"\bsk-ant-[A-Za-z0-9_\-]{20,}", 0, any),
        rule(
            "openai_key",
            r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}",
            0,
            any,
        ),
        rule("google_api_key", r"\bAIza[0-9A-Za-z_\-]{35}", 0, any),
        rule(
            "jwt",
            r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",
            0,
            any,
        ),
        rule(
            "connection_string_password",
            r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@]+:([^\s@/]{3,})@",
            1,
            not_placeholder,
        ),
        rule(
            "password_assignment",
            r#"(?i)[a-z0-9_.\-]*(?:password|passwd|pwd|passphrase|secret)[a-z0-9_.\-]*["']?\s*(?::|=|:=|=>)\s*["']([^"'\s]{4,})["']"#,
            1,
            not_placeholder,
        ),
        rule(
            "high_entropy_credential",
            r#"(?i)[a-z0-9_.\-]*(?:key|token|secret|salt|signature|credential|auth)[a-z0-9_.\-]*["']?\s*(?::|=|:=|=>)\s*["']?([A-Za-z0-9+/=_\-]{16,})"#,
            1,
            high_entropy,
        ),
    ]
});

/// `KEY=value` lines of `.env`-style files: every value is treated as a secret.
static ENV_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?mR)^[ \t]*(?:export[ \t]+)?[A-Za-z_][A-Za-z0-9_.]*[ \t]*=[ \t]*["']?([^"'\r\n#]+?)["']?[ \t]*$"#)
        .unwrap_or_else(|e| panic!("env rule: {e}"))
});

/// Whether `path` names a `.env`-style file (`.env`, `.env.local`, `prod.env`, …).
pub fn is_env_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name == ".env" || name.starts_with(".env.") || name.ends_with(".env")
}

/// Scrubs `text`: every secret replaced by `<REDACTED:rule>`; the findings carry no file.
pub fn scrub_text(text: &str) -> (String, Vec<Finding>) {
    scrub(text, false)
}

/// Scrubs a file's text: as [`scrub_text`], plus every value of a `.env`-style file; findings
/// carry the path.
pub fn scrub_file(path: &Path, text: &str) -> (String, Vec<Finding>) {
    let (out, mut findings) = scrub(text, is_env_file(path));
    let name = path.display().to_string();
    for finding in &mut findings {
        finding.file = Some(name.clone());
    }
    (out, findings)
}

fn scrub(text: &str, env_file: bool) -> (String, Vec<Finding>) {
    let mut spans: Vec<(usize, usize, &'static str)> = Vec::new();
    let overlaps = |spans: &[(usize, usize, &str)], start: usize, end: usize| {
        spans.iter().any(|&(s, e, _)| start < e && s < end)
    };
    for rule in RULES.iter() {
        for captures in rule.regex.captures_iter(text) {
            let Some(value) = captures.get(rule.group) else {
                continue;
            };
            if (rule.accept)(value.as_str()) && !overlaps(&spans, value.start(), value.end()) {
                spans.push((value.start(), value.end(), rule.name));
            }
        }
    }
    if env_file {
        for captures in ENV_LINE.captures_iter(text) {
            if let Some(value) = captures.get(1)
                && not_placeholder(value.as_str())
                && !overlaps(&spans, value.start(), value.end())
            {
                spans.push((value.start(), value.end(), "env_file_value"));
            }
        }
    }
    spans.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut findings = Vec::with_capacity(spans.len());
    let mut last = 0;
    for (start, end, name) in spans {
        out.push_str(&text[last..start]);
        out.push_str("<REDACTED:");
        out.push_str(name);
        out.push('>');
        last = end;
        findings.push(Finding {
            file: None,
            line: text[..start].matches('\n').count() + 1,
            rule: name,
        });
    }
    out.push_str(&text[last..]);
    (out, findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Secrets are assembled at runtime from harmless pieces so that no scanner flags the repo.
    fn planted() -> Vec<(&'static str, String)> {
        let r = |s: &str, n: usize| s.repeat(n);
        let mixed = "aB3dE5fG7hJ9kL2mN4pQ6rS8tU0vW1xY";
        vec![
            (
                "aws_access_key",
                format!("{}{}", "AKIA", "Z7Q2XK4M9PLW3RTV"),
            ),
            (
                "aws_secret_key",
                format!(
                    "aws_secret_access_key = {}",
                    &format!("{mixed}{mixed}")[..40]
                ),
            ),
            (
                "github_token",
                format!("{}_{}", "ghp", &format!("{mixed}{mixed}")[..36]),
            ),
            (
                "github_token",
                format!("{}_{}", "github_pat", &format!("{mixed}{mixed}")[..40]),
            ),
            ("gitlab_token", format!("{}-{}", "glpat", &mixed[..20])),
            (
                "slack_token",
                format!("{}-{}-{}", "xoxb", "1234567890", &mixed[..24]),
            ),
            (
                "slack_webhook",
                format!(
                    "https://hooks.{}.com/services/T0000/B0000/{}",
                    "slack",
                    &mixed[..24]
                ),
            ),
            (
                "stripe_key",
                format!("{}_{}_{}", "sk", "live", &mixed[..24]),
            ),
            (
                "anthropic_key",
                format!(
                    "{}-{}-{}",
                    "sk",
                    "ant-api03",
                    &format!("{mixed}{mixed}")[..40]
                ),
            ),
            (
                "openai_key",
                format!("{}-{}-{}", "sk", "proj", &mixed[..30]),
            ),
            (
                "google_api_key",
                format!("{}{}", "AIza", &format!("{mixed}{mixed}")[..35]),
            ),
            (
                "jwt",
                format!(
                    "{}.{}.{}",
                    "eyJhbGciOiJIUzI1NiJ9",
                    "eyJzdWIiOiIxMjM0NTY3ODkwIn0",
                    &mixed[..22]
                ),
            ),
            (
                "private_key",
                format!(
                    "-----BEGIN {} PRIVATE KEY-----\n{}\n{}\n-----END {} PRIVATE KEY-----",
                    "RSA",
                    r(&mixed[..8], 8),
                    r(&mixed[8..16], 8),
                    "RSA"
                ),
            ),
            (
                "connection_string_password",
                format!("postgres://app:{}@db.internal:5432/app", "hunter2hunter2"),
            ),
            (
                "password_assignment",
                format!("DB_PASSWORD = \"{}\"", "correct-horse-battery"),
            ),
            (
                "password_assignment",
                format!("\"client_secret\": \"{}\"", "opensesame99"),
            ),
            (
                "high_entropy_credential",
                format!("signing_key = {}", &mixed[4..28]),
            ),
        ]
    }

    #[test]
    fn every_planted_secret_is_redacted_with_its_rule_and_line() {
        let secrets = planted();
        let mut text = String::from("# config\n");
        for (_, secret) in &secrets {
            text.push_str(&format!("value = {secret}  # planted\n"));
        }
        let (out, findings) = scrub_text(&text);
        let mut expected_line = 2;
        for (rule, secret) in &secrets {
            let finding = findings
                .iter()
                .find(|f| f.line == expected_line)
                .unwrap_or_else(|| panic!("no finding on line {expected_line} for {rule}: {out}"));
            assert_eq!(finding.rule, *rule, "line {expected_line}");
            expected_line += 1 + secret.matches('\n').count();
        }
        assert_eq!(findings.len(), secrets.len(), "{findings:?}");
        for (rule, secret) in &secrets {
            assert!(out.contains(&format!("<REDACTED:{rule}>")));
            // The key names around the secret may stay; the secret itself may not.
            let core = secret
                .rsplit([' ', '=', '"', ':', '/'])
                .find(|s| s.len() > 8)
                .unwrap();
            assert!(!out.contains(core), "{rule} leaked: {out}");
        }
        let report = format!("{findings:?}");
        for (_, secret) in &secrets {
            assert!(!report.contains(secret.as_str()));
        }
    }

    #[test]
    fn ordinary_code_is_left_alone() {
        let text = "password = os.environ[\"DB_PASSWORD\"]\ntoken = get_token()\n\
                    api_key = \"<your key here>\"\nsecret = \"${SECRET}\"\nkey_len = 16\n\
                    url = \"https://example.com/path\"\nsort_key = lambda item: item.name\n\
                    signature: s.signature.clone(),\nbudget_tokens: budget.context_tokens,\n\
                    api_key_env: remote.api_key_env.clone(),\ntoken_count = count_tokens_in_prompt\n";
        let (out, findings) = scrub_text(text);
        assert_eq!(findings, vec![]);
        assert_eq!(out, text);
    }

    #[test]
    fn env_files_have_every_value_redacted() {
        let text = "# comment\nDEBUG=true\nexport API_URL=\"https://x.test\"\nEMPTY=\n";
        let (out, findings) = scrub_file(Path::new("/p/.env.local"), text);
        assert_eq!(
            out,
            "# comment\nDEBUG=<REDACTED:env_file_value>\nexport API_URL=\"<REDACTED:env_file_value>\"\nEMPTY=\n"
        );
        assert_eq!(findings.len(), 2);
        assert_eq!(findings[0].file.as_deref(), Some("/p/.env.local"));
        assert_eq!(findings[1].line, 3);
        let (same, none) = scrub_file(Path::new("/p/settings.py"), "DEBUG=true\n");
        assert_eq!((same.as_str(), none.len()), ("DEBUG=true\n", 0));
    }
}
