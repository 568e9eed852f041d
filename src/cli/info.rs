//! `cutout providers` and `cutout health`: what each provider offers, what
//! is configured, and whether the services answer.

use serde_json::json;

use super::{EXIT_ALL_DONE, EXIT_SOME_FAILED, UsageError, http_client};
use crate::config::{self, process_env};
use crate::providers::{self, OptionKind, ProviderId, ProviderInfo};
use crate::secrets::Keys;

pub(super) fn print_providers(as_json: bool) -> Result<u8, UsageError> {
    let keys = Keys::for_this_process();
    let mut listed = Vec::new();
    for id in ProviderId::ALL {
        let info = id.info();
        let (credentials, _) = keys.credentials(id);
        let endpoints = config::endpoints(id, &process_env)?;
        listed.push(json!({
            "id": id,
            "name": info.name,
            "summary": info.summary,
            "accepts": info.accepts,
            "models": info.models.iter().enumerate().map(|(i, m)| json!({"id": m.id, "summary": m.summary, "default": i == 0})).collect::<Vec<_>>(),
            "options": info.options,
            "credentials": info.credentials.iter().map(|c| json!({
                "id": c.id, "label": c.label, "env_var": c.env_var,
                "configured": credentials.get(c.id).is_some(),
                "source": credentials.source(c.id),
            })).collect::<Vec<_>>(),
            "endpoints": endpoints.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "default_concurrency": info.default_concurrency,
            "has_health_check": info.has_health_check,
            "input_limits": info.input_limits,
        }));
        if !as_json {
            print_provider_text(info, &credentials);
        }
    }
    if as_json {
        println!("{}", serde_json::Value::Array(listed));
    } else {
        print_input_formats();
    }
    Ok(EXIT_ALL_DONE)
}

fn print_provider_text(info: &ProviderInfo, credentials: &crate::secrets::Credentials) {
    println!("{} ({})", info.name, info.id);
    println!("  {}", info.summary);
    let accepts: Vec<_> = info.accepts.iter().map(|k| k.plural_noun()).collect();
    println!("  takes:   {}", accepts.join(", "));
    if let Some(images) = image_limits_line(&info.input_limits) {
        println!("  images:  {images}");
    }
    println!("  models:");
    for (i, model) in info.models.iter().enumerate() {
        let default = if i == 0 { " (default)" } else { "" };
        println!("    {:<12} {}{default}", model.id, model.summary);
    }
    if !info.options.is_empty() {
        println!("  options (--option KEY=VALUE):");
        for option in info.options {
            let kind = match option.kind {
                OptionKind::Bool => "true|false".to_owned(),
                OptionKind::Choice { values } => values.join("|"),
                OptionKind::Text { example, .. } => format!("e.g. {example}"),
            };
            println!("    {:<18} {kind}  {}", option.key, option.help);
        }
    }
    for credential in info.credentials {
        let state = match credentials.source(credential.id) {
            Some(source) => format!("set ({source})"),
            None => format!(
                "not set: run `cutout keys set {}{}` or set {}",
                info.id,
                if info.credentials.len() > 1 {
                    format!(" --credential {}", credential.id)
                } else {
                    String::new()
                },
                credential.env_var
            ),
        };
        println!("  {}: {state}", credential.label);
    }
    println!();
}

/// "JPEG, PNG or WebP, up to 25 MP and 22 MB (from its website; unconfirmed)".
fn image_limits_line(limits: &providers::InputLimits) -> Option<String> {
    let (last, rest) = limits.image_formats.split_last()?;
    let mut line = if rest.is_empty() {
        last.name().to_owned()
    } else {
        let names: Vec<_> = rest.iter().map(|f| f.name()).collect();
        format!("{} or {}", names.join(", "), last.name())
    };
    let mut sizes = Vec::new();
    if let Some(pixels) = limits.max_pixels {
        sizes.push(crate::imaging::decode::megapixels(pixels));
    }
    if let Some(side) = limits.max_side_px {
        sizes.push(format!("{side} px a side"));
    }
    if let Some(bytes) = limits.max_file_bytes {
        sizes.push(format!("{} MB", bytes / 1_000_000));
    }
    if !sizes.is_empty() {
        line.push_str(&format!(", up to {}", sizes.join(" and ")));
    }
    if !limits.confirmed {
        line.push_str(" (partly from its website; unconfirmed)");
    }
    Some(line)
}

/// Which picture formats this build opens, after the providers.
fn print_input_formats() {
    println!("Input formats Cutout opens (to rotate, convert colours or downscale before upload):");
    for format in crate::imaging::decode::input_formats() {
        let state = if format.available { "yes" } else { "no " };
        println!(
            "  {state}  {:<5} .{:<24} {}",
            format.name,
            format.extensions.join(" ."),
            format.note
        );
    }
}

pub(super) async fn health(only: Option<ProviderId>, as_json: bool) -> Result<u8, UsageError> {
    let http = http_client()?;
    let mut all_healthy = true;
    let mut results = Vec::new();
    for id in ProviderId::ALL
        .into_iter()
        .filter(|id| only.is_none_or(|o| o == *id))
    {
        let endpoints = config::endpoints(id, &process_env)?;
        let outcome = providers::check_health(id, &endpoints, &http).await;
        let entry = match outcome {
            None => {
                if !as_json {
                    println!("{id}: no health endpoint; skipped");
                }
                json!({"provider": id, "checked": false})
            }
            Some(Ok(report)) => {
                all_healthy &= report.healthy;
                if !as_json {
                    println!("{id}: {}", report.status);
                    for check in &report.checks {
                        let mark = if check.healthy { "ok" } else { "FAILING" };
                        let detail = check
                            .detail
                            .as_deref()
                            .map(|d| format!(" ({d})"))
                            .unwrap_or_default();
                        println!("  {:<20} {mark}{detail}", check.name);
                    }
                }
                json!({"provider": id, "checked": true, "healthy": report.healthy, "status": report.status, "checks": report.checks})
            }
            Some(Err(error)) => {
                all_healthy = false;
                if !as_json {
                    println!("{id}: unreachable: {error}");
                }
                json!({"provider": id, "checked": true, "healthy": false, "error": error.to_string()})
            }
        };
        results.push(entry);
    }
    if as_json {
        println!("{}", serde_json::Value::Array(results));
    }
    Ok(if all_healthy {
        EXIT_ALL_DONE
    } else {
        EXIT_SOME_FAILED
    })
}
