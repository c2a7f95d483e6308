//! The `--output` (`-o`) choice every command shares: `text` for people (a table, a tree or
//! sentences, each command its own), `json` and `yaml` for programs (the command's result as one
//! document). `tree` is accepted for `text`, the name `status` used for it. [`PageFormat`] adds
//! `html` (one self-contained page) for `report` and `analyze` only: the other commands refuse it
//! when the command line is parsed, before any of them acts (record-deployment, for one, would
//! otherwise record and only then fail to print).

use serde::Serialize;

/// How a command prints its result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// For people.
    #[default]
    #[value(alias = "tree")]
    Text,
    /// One JSON document, indented.
    Json,
    /// One YAML document.
    Yaml,
}

/// `-o` of the commands that also write an HTML page (`report`, `analyze`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PageFormat {
    /// For people.
    #[default]
    #[value(alias = "tree")]
    Text,
    /// One JSON document, indented.
    Json,
    /// One YAML document.
    Yaml,
    /// One self-contained HTML page with plots.
    Html,
}

impl PageFormat {
    /// The plain format this is, or None for `html`.
    pub fn plain(self) -> Option<OutputFormat> {
        match self {
            PageFormat::Text => Some(OutputFormat::Text),
            PageFormat::Json => Some(OutputFormat::Json),
            PageFormat::Yaml => Some(OutputFormat::Yaml),
            PageFormat::Html => None,
        }
    }
}

impl OutputFormat {
    /// `value` as a JSON or YAML document ending in one newline, or None for `text`, which each
    /// command renders itself.
    pub fn document<T: Serialize>(self, value: &T) -> Option<Result<String, String>> {
        let text = match self {
            OutputFormat::Text => return None,
            OutputFormat::Json => serde_json::to_string_pretty(value).map_err(|e| e.to_string()),
            OutputFormat::Yaml => serde_saphyr::to_string(value).map_err(|e| e.to_string()),
        };
        Some(text.map(|t| format!("{}\n", t.trim_end_matches('\n'))))
    }
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;

    use super::*;

    #[test]
    fn documents() {
        let v = serde_json::json!({"verdict": "pass", "looks": 3});
        assert_eq!(OutputFormat::Text.document(&v), None);
        let json = OutputFormat::Json.document(&v).unwrap().unwrap();
        assert_eq!(serde_json::from_str::<serde_json::Value>(&json).unwrap(), v);
        assert!(json.ends_with("}\n") && !json.ends_with("\n\n"));
        let yaml = OutputFormat::Yaml.document(&v).unwrap().unwrap();
        assert!(
            yaml.contains("verdict: pass") && yaml.ends_with('\n'),
            "{yaml}"
        );
        let back: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn names() {
        assert_eq!(
            OutputFormat::from_str("json", false),
            Ok(OutputFormat::Json)
        );
        assert_eq!(
            OutputFormat::from_str("yaml", false),
            Ok(OutputFormat::Yaml)
        );
        assert_eq!(
            OutputFormat::from_str("text", false),
            Ok(OutputFormat::Text)
        );
        assert_eq!(
            OutputFormat::from_str("tree", false),
            Ok(OutputFormat::Text)
        );
        assert!(OutputFormat::from_str("xml", false).is_err());
        assert!(OutputFormat::from_str("html", false).is_err());
        assert_eq!(PageFormat::from_str("html", false), Ok(PageFormat::Html));
        assert_eq!(PageFormat::Html.plain(), None);
        assert_eq!(PageFormat::Json.plain(), Some(OutputFormat::Json));
    }
}
