//! The output naming template: how a result's file name is built from the
//! input's name, the provider, the model, the date and the variation, so a
//! user can keep results from several providers or runs side by side
//! (`{name}-{provider}-{date}`) instead of getting `shoe (1).png`.
//!
//! A template only names the file's stem. The folder (and a dropped folder's
//! tree) comes from [`output_dir_for`](crate::jobs::output::output_dir_for),
//! the extension from the format, and the ` (1)` that keeps an existing file
//! safe from [`candidate_name`](crate::jobs::output::candidate_name); so a
//! template may not contain a path separator, and whatever it renders is
//! made safe the same way [`JobInput::stem`](crate::jobs::JobInput::stem) is.

use std::fmt;
use std::str::FromStr;

use jiff::civil::Date;

use crate::jobs::job::sanitize_file_stem;
use crate::providers::ProviderId;

/// The placeholders a template may use, for messages and help text.
pub const PLACEHOLDERS: &[&str] = &["{name}", "{provider}", "{model}", "{date}", "{variation}"];

/// The template used when the user has not chosen one: the input's own
/// name, which is how results were always named.
pub const DEFAULT_TEMPLATE: &str = "{name}";

/// A checked naming template. Parsing happens once, when the user types or
/// the settings are read, so a bad template is reported there and rendering
/// can never fail half-way through a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamingTemplate {
    /// What the user wrote, kept for the settings file and the text field.
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Name,
    Provider,
    Model,
    Date,
    Variation,
}

/// Why a template cannot be used. Each message says how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamingError {
    /// Nothing was written.
    #[error("the naming template is empty; use {{name}} to keep the input's name")]
    Empty,
    /// `{something}` that is not one of [`PLACEHOLDERS`].
    #[error(
        "the naming template has an unknown placeholder {{{0}}}; use {{name}}, {{provider}}, {{model}}, {{date}} or {{variation}}"
    )]
    UnknownPlaceholder(String),
    /// A `{` with no `}` after it.
    #[error(
        "the naming template opens a placeholder with {{ that never closes; write {{{{ for a literal brace"
    )]
    Unclosed,
    /// A `}` that closes nothing.
    #[error("the naming template has a lone }}; write }}}} for a literal brace")]
    StrayBrace,
    /// A `/` or `\`: a template names a file, never a folder.
    #[error(
        "the naming template cannot contain `{0}`: it names the file, and the output folder is chosen separately"
    )]
    PathSeparator(char),
}

impl NamingTemplate {
    /// Checks a template. `{{` and `}}` stand for literal braces.
    pub fn parse(template: &str) -> Result<NamingTemplate, NamingError> {
        if template.trim().is_empty() {
            return Err(NamingError::Empty);
        }
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = template.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '}' => return Err(NamingError::StrayBrace),
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some('{') | None => return Err(NamingError::Unclosed),
                            Some(c) => name.push(c),
                        }
                    }
                    let part = match name.as_str() {
                        "name" => Part::Name,
                        "provider" => Part::Provider,
                        "model" => Part::Model,
                        "date" => Part::Date,
                        "variation" => Part::Variation,
                        _ => return Err(NamingError::UnknownPlaceholder(name)),
                    };
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(part);
                }
                '/' | '\\' => return Err(NamingError::PathSeparator(c)),
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(NamingTemplate {
            source: template.to_owned(),
            parts,
        })
    }

    /// The template as the user wrote it.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the template places the variation itself. When it does not,
    /// a multi-result job's variation goes before the extension
    /// (`shoe.shadowTop.png`), as it always has.
    pub fn has_variation(&self) -> bool {
        self.parts.contains(&Part::Variation)
    }

    /// The name for one result: the stem and the variation to hand to
    /// [`PendingOutput::commit`](crate::jobs::output::PendingOutput::commit).
    /// The stem is made safe like an input's stem; should it come out empty
    /// (`{variation}` for a single result), the input's name is used, so a
    /// result never ends up called `.png`.
    pub fn render<'a>(&self, fields: &NameFields<'a>) -> OutputName<'a> {
        let mut rendered = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => rendered.push_str(text),
                Part::Name => rendered.push_str(fields.name),
                Part::Provider => rendered.push_str(fields.provider.as_str()),
                Part::Model => rendered.push_str(fields.model),
                Part::Date => rendered.push_str(&format_date(fields.date)),
                Part::Variation => rendered.push_str(fields.variation.unwrap_or_default()),
            }
        }
        let stem = if sanitized_is_empty(&rendered) {
            sanitize_file_stem(fields.name)
        } else {
            sanitize_file_stem(&rendered)
        };
        OutputName {
            stem,
            variation: if self.has_variation() {
                None
            } else {
                fields.variation
            },
        }
    }
}

/// Whether `text` holds nothing that survives as a file name.
fn sanitized_is_empty(text: &str) -> bool {
    text.trim_start_matches(|c: char| c == '.' || c.is_whitespace())
        .trim_end()
        .is_empty()
}

/// `YYYY-MM-DD`: sorts by date in every file manager.
fn format_date(date: Date) -> String {
    format!("{:04}-{:02}-{:02}", date.year(), date.month(), date.day())
}

impl Default for NamingTemplate {
    fn default() -> Self {
        NamingTemplate {
            source: DEFAULT_TEMPLATE.to_owned(),
            parts: vec![Part::Name],
        }
    }
}

impl fmt::Display for NamingTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Stored as the template text (in the job history), so a stored job names
/// its results exactly as it did when it was added.
impl serde::Serialize for NamingTemplate {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> serde::Deserialize<'de> for NamingTemplate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        NamingTemplate::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl FromStr for NamingTemplate {
    type Err = NamingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NamingTemplate::parse(s)
    }
}

/// What a template can draw on for one result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameFields<'a> {
    /// The input's name: [`JobInput::stem`](crate::jobs::JobInput::stem).
    pub name: &'a str,
    /// The provider that made the result.
    pub provider: ProviderId,
    /// The model it used.
    pub model: &'a str,
    /// The day the run started ([`today`]), taken once per run so a batch
    /// that crosses midnight is not split across two dates.
    pub date: Date,
    /// The variation's name when a job has several results
    /// (`shadowTop`); `None` for a single result.
    pub variation: Option<&'a str>,
}

/// A rendered name, ready for
/// [`PendingOutput::commit`](crate::jobs::output::PendingOutput::commit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputName<'a> {
    /// The file name without extension; never empty.
    pub stem: String,
    /// The variation to put before the extension; `None` when there is none
    /// or the template already placed it in the stem.
    pub variation: Option<&'a str>,
}

/// Today's date where the user is, for `{date}`. Falls back to UTC when the
/// system time zone cannot be found (jiff logs why), and to 1970-01-01 if
/// the clock is outside the years jiff can represent: a name is never worth
/// failing a job over.
pub fn today() -> Date {
    let now = jiff::Timestamp::try_from(std::time::SystemTime::now())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    now.to_zoned(jiff::tz::TimeZone::system()).date()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::output::candidate_name;

    fn fields<'a>(name: &'a str, variation: Option<&'a str>) -> NameFields<'a> {
        NameFields {
            name,
            provider: ProviderId::Removebg,
            model: "auto",
            date: jiff::civil::date(2025, 3, 9),
            variation,
        }
    }

    fn file_name(template: &str, fields: &NameFields<'_>, ext: &str) -> String {
        let name = NamingTemplate::parse(template).unwrap().render(fields);
        candidate_name(&name.stem, name.variation, ext, 0)
    }

    #[test]
    fn the_default_template_names_results_exactly_as_before() {
        let template = NamingTemplate::default();
        assert_eq!(template.as_str(), "{name}");
        assert_eq!(template, NamingTemplate::parse("{name}").unwrap());
        assert_eq!(
            file_name("{name}", &fields("shoe", None), "png"),
            "shoe.png"
        );
        assert_eq!(
            file_name("{name}", &fields("shoe", Some("shadowTop")), "png"),
            "shoe.shadowTop.png"
        );
        for stem in ["red shoe", "download", "a.b", "ünïcode ✂"] {
            let name = template.render(&fields(stem, Some("compose")));
            assert_eq!(name.stem, stem);
            assert_eq!(name.variation, Some("compose"));
        }
    }

    #[test]
    fn every_placeholder_is_filled_in() {
        assert_eq!(
            file_name(
                "{name}-{provider}-{model}-{date}-{variation}",
                &fields("shoe", Some("shadowTop")),
                "webp"
            ),
            "shoe-removebg-auto-2025-03-09-shadowTop.webp"
        );
    }

    #[test]
    fn a_template_that_places_the_variation_does_not_get_it_again_before_the_extension() {
        let name = NamingTemplate::parse("{variation}_{name}")
            .unwrap()
            .render(&fields("shoe", Some("compose")));
        assert_eq!(name.stem, "compose_shoe");
        assert_eq!(name.variation, None);
    }

    #[test]
    fn the_variation_is_empty_for_a_single_result() {
        assert_eq!(
            file_name("{name} {variation}", &fields("shoe", None), "png"),
            "shoe.png"
        );
        assert_eq!(
            file_name("{name}-{variation}x", &fields("shoe", None), "png"),
            "shoe-x.png"
        );
    }

    #[test]
    fn a_name_that_renders_empty_falls_back_to_the_inputs_name() {
        assert_eq!(
            file_name("{variation}", &fields("shoe", None), "png"),
            "shoe.png"
        );
        assert_eq!(
            file_name(". {variation}", &fields("shoe", None), "png"),
            "shoe.png"
        );
    }

    #[test]
    fn doubled_braces_are_literal_braces() {
        assert_eq!(
            file_name("{{{name}}}", &fields("shoe", None), "png"),
            "{shoe}.png"
        );
        assert_eq!(
            NamingTemplate::parse("{{name}}")
                .unwrap()
                .render(&fields("shoe", None))
                .stem,
            "{name}"
        );
    }

    #[test]
    fn text_around_placeholders_is_kept() {
        assert_eq!(
            file_name("cut {name} (final)", &fields("shoe", None), "png"),
            "cut shoe (final).png"
        );
    }

    #[test]
    fn unknown_placeholders_are_refused_naming_the_ones_that_exist() {
        let err = NamingTemplate::parse("{name}-{size}").unwrap_err();
        assert_eq!(err, NamingError::UnknownPlaceholder("size".to_owned()));
        let message = err.to_string();
        assert!(message.contains("{size}"), "{message}");
        assert!(message.contains("{variation}"), "{message}");
        assert_eq!(
            NamingTemplate::parse("{Name}").unwrap_err(),
            NamingError::UnknownPlaceholder("Name".to_owned())
        );
        assert_eq!(
            NamingTemplate::parse("{}").unwrap_err(),
            NamingError::UnknownPlaceholder(String::new())
        );
    }

    #[test]
    fn unbalanced_braces_are_refused() {
        assert_eq!(
            NamingTemplate::parse("{name").unwrap_err(),
            NamingError::Unclosed
        );
        assert_eq!(
            NamingTemplate::parse("{na{me}").unwrap_err(),
            NamingError::Unclosed
        );
        assert_eq!(
            NamingTemplate::parse("name}").unwrap_err(),
            NamingError::StrayBrace
        );
        assert!(
            NamingError::StrayBrace.to_string().contains("}}"),
            "{}",
            NamingError::StrayBrace
        );
    }

    #[test]
    fn path_separators_are_refused_because_a_template_names_a_file() {
        assert_eq!(
            NamingTemplate::parse("{provider}/{name}").unwrap_err(),
            NamingError::PathSeparator('/')
        );
        assert_eq!(
            NamingTemplate::parse("..\\{name}").unwrap_err(),
            NamingError::PathSeparator('\\')
        );
        let message = NamingError::PathSeparator('/').to_string();
        assert!(message.contains("`/`"), "{message}");
    }

    #[test]
    fn an_empty_template_is_refused() {
        assert_eq!(NamingTemplate::parse("").unwrap_err(), NamingError::Empty);
        assert_eq!(NamingTemplate::parse("  ").unwrap_err(), NamingError::Empty);
    }

    #[test]
    fn characters_no_file_system_takes_are_replaced_like_in_input_names() {
        let name = NamingTemplate::parse("{name}: {model}?")
            .unwrap()
            .render(&NameFields {
                model: "v2|fast",
                ..fields("shoe", None)
            });
        assert_eq!(name.stem, "shoe_ v2_fast_");
        let hidden = NamingTemplate::parse(".{name}")
            .unwrap()
            .render(&fields("shoe", None));
        assert_eq!(hidden.stem, "shoe");
    }

    #[test]
    fn a_variation_from_the_provider_cannot_climb_out_of_the_folder() {
        let name = NamingTemplate::parse("{name}-{variation}")
            .unwrap()
            .render(&fields("shoe", Some("../../etc/passwd")));
        assert!(!name.stem.contains('/'), "{}", name.stem);
    }

    #[test]
    fn the_template_reads_back_as_written() {
        let template: NamingTemplate = "{{{name}}} {date}".parse().unwrap();
        assert_eq!(template.to_string(), "{{{name}}} {date}");
        assert!(!template.has_variation());
        assert!(
            NamingTemplate::parse("{variation}")
                .unwrap()
                .has_variation()
        );
    }

    #[test]
    fn today_is_a_plausible_date() {
        assert!(today().year() >= 2024);
    }
}
