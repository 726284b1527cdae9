//! Where a recording's directory goes: a template under `recordings_dir`, with every value
//! that came from the network sanitized before it reaches a path.

use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// The values a layout template may use.
pub struct LayoutValues<'a> {
    pub started_at: OffsetDateTime,
    pub recording_id: &'a str,
    pub record_id: Option<&'a str>,
    pub calluuid: Option<&'a str>,
    pub kind: &'a str,
}

/// Keep `[A-Za-z0-9._-]`, replace anything else by `_`, never `.`/`..`, at most 64 bytes.
pub fn sanitize_component(value: &str) -> String {
    let mut out: String = value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if out.is_empty() || out.chars().all(|c| c == '.') {
        out = "_".repeat(out.len().max(1));
    }
    if out.starts_with('.') {
        out.replace_range(0..1, "_");
    }
    out
}

/// Render the template into a directory under `root`. Every `/`-separated piece of the
/// template is one path component; placeholder values cannot add components.
pub fn recording_dir(root: &Path, template: &str, v: &LayoutValues<'_>) -> PathBuf {
    let mut dir = root.to_path_buf();
    for piece in template.split('/').filter(|p| !p.is_empty()) {
        let mut rendered = String::new();
        let mut rest = piece;
        while let Some(open) = rest.find('{') {
            rendered.push_str(&rest[..open]);
            let Some(close) = rest[open..].find('}') else {
                rendered.push_str(&rest[open..]);
                rest = "";
                break;
            };
            let name = &rest[open + 1..open + close];
            rendered.push_str(&value_of(name, v));
            rest = &rest[open + close + 1..];
        }
        rendered.push_str(rest);
        dir.push(sanitize_component(&rendered));
    }
    dir
}

fn value_of(name: &str, v: &LayoutValues<'_>) -> String {
    let t = v.started_at;
    match name {
        "yyyy" => format!("{:04}", t.year()),
        "mm" => format!("{:02}", u8::from(t.month())),
        "dd" => format!("{:02}", t.day()),
        "hh" => format!("{:02}", t.hour()),
        "recording_id" => v.recording_id.to_string(),
        "record_id" => v.record_id.unwrap_or("none").to_string(),
        "calluuid" => v.calluuid.unwrap_or("none").to_string(),
        "kind" => v.kind.to_string(),
        other => format!("{{{other}}}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn values<'a>(record_id: Option<&'a str>) -> LayoutValues<'a> {
        LayoutValues {
            started_at: datetime!(2026-03-04 05:06:07 UTC),
            recording_id: "0f8e",
            record_id,
            calluuid: Some("CU1"),
            kind: "genesys",
        }
    }

    #[test]
    fn default_template() {
        let d = recording_dir(
            Path::new("/r"),
            "{yyyy}/{mm}/{dd}/{recording_id}",
            &values(None),
        );
        assert_eq!(d, PathBuf::from("/r/2026/03/04/0f8e"));
    }

    #[test]
    fn network_values_cannot_escape_the_root() {
        for hostile in ["../../etc", "a/b", "..", ".", "x\0y", "", "é€"] {
            let d = recording_dir(Path::new("/r"), "{record_id}", &values(Some(hostile)));
            assert_eq!(d.parent(), Some(Path::new("/r")), "{hostile:?} → {d:?}");
            let last = d.file_name().unwrap().to_str().unwrap();
            assert!(!last.starts_with('.'), "{last}");
            assert!(
                last.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            );
        }
        let long = "x".repeat(500);
        let d = recording_dir(Path::new("/r"), "{record_id}", &values(Some(&long)));
        assert_eq!(d.file_name().unwrap().len(), 64);
    }

    #[test]
    fn mixed_text_and_placeholders() {
        let d = recording_dir(Path::new("/r"), "{kind}-{calluuid}/{hh}", &values(None));
        assert_eq!(d, PathBuf::from("/r/genesys-CU1/05"));
    }
}
