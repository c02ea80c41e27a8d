//! Where a room password comes from: `--password`, `OCM_PASSWORD` (clap reads both
//! into the same field), the first line of `--password-file`, or, on a terminal, a
//! hidden prompt when the server says the room needs one.

use std::path::Path;

/// The password given on the command line, in the environment or in a file.
pub fn given(password: Option<&str>, file: Option<&Path>) -> Result<Option<String>, String> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read --password-file {}: {e}", path.display()))?;
        let first = text.lines().next().unwrap_or("");
        if first.is_empty() {
            return Err(format!("--password-file {} is empty", path.display()));
        }
        return Ok(Some(first.to_owned()));
    }
    Ok(password.filter(|p| !p.is_empty()).map(str::to_owned))
}

/// Asks on the terminal, without echo.
pub fn ask(room: &str) -> Result<String, String> {
    loop {
        let answer = rpassword::prompt_password(format!("password for room {room:?}: "))
            .map_err(|e| format!("cannot read the password: {e}"))?;
        if !answer.is_empty() {
            return Ok(answer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_gives_its_first_line_without_the_newline() {
        let dir = std::env::temp_dir().join(format!("ocm-pw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pw");
        std::fs::write(&file, "s3cret pass\nignored\n").unwrap();
        assert_eq!(given(None, Some(&file)), Ok(Some("s3cret pass".into())));
        std::fs::write(&file, "\n").unwrap();
        assert!(given(None, Some(&file)).unwrap_err().contains("empty"));
        assert!(given(None, Some(&dir.join("missing"))).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(given(Some("pw"), None), Ok(Some("pw".into())));
        assert_eq!(given(Some(""), None), Ok(None));
    }
}
