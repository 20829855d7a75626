//! Reads what a rendered systemd unit or drop-in would run: the command line
//! of its last `ExecStart=`, split and unescaped as systemd does for the
//! subset of the syntax configgen writes (double quotes, backslash escapes,
//! `%%` and `$$`). Any other specifier or variable is an error: a rendered
//! command must mean the same inside and outside systemd.

/// The words of the effective `ExecStart=` (the last non-empty one).
pub fn exec_start(unit: &str) -> Result<Vec<String>, String> {
    let line = unit
        .lines()
        .filter_map(|l| l.strip_prefix("ExecStart="))
        .rfind(|v| !v.trim().is_empty())
        .ok_or("no ExecStart= with a command")?;
    split(line)
}

/// Splits one command line into words.
pub fn split(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else {
            return Ok(words);
        };
        let mut word = String::new();
        if first == '"' {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated quote in {line}")),
                    Some('"') => break,
                    Some('\\') => word.push(chars.next().ok_or("trailing backslash")?),
                    Some(c) => word.push(c),
                }
            }
            if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                return Err(format!("text right after a closing quote in {line}"));
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '"' || c == '\\' {
                    return Err(format!("unexpected {c} inside a word in {line}"));
                }
                word.push(c);
            }
        }
        words.push(unescape(&word)?);
    }
}

/// `%%` -> `%`, `$$` -> `$`; anything systemd would expand is an error.
fn unescape(word: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        if c == '%' || c == '$' {
            match chars.next() {
                Some(n) if n == c => out.push(c),
                other => {
                    return Err(format!(
                        "{word}: systemd would expand {c}{}",
                        other.map(String::from).unwrap_or_default()
                    ))
                }
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}
