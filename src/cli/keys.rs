//! `cutout keys`: API keys in the OS keychain. `status` says where each
//! provider's keys come from, `set` stores one read from standard input (never
//! from an argument, which would land in shell history and `ps`), `delete`
//! removes it, and `test` asks the provider whether it accepts the keys found.
//! Keychain calls block, which is fine here: nothing else runs meanwhile.

use std::io::{BufRead, IsTerminal, Write};

use clap::{Args, Subcommand};
use secrecy::zeroize::Zeroize;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::{EXIT_ALL_DONE, EXIT_INTERRUPTED, EXIT_SOME_FAILED, UsageError, http_client, runtime};
use crate::config::{self, process_env};
use crate::providers::{self, CredentialSpec, ProviderConfig, ProviderError, ProviderId};
use crate::secrets::{Keychain, KeychainStatus, Keys, credential_spec};

/// `cutout keys` arguments.
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: KeysCommand,
}

/// The `cutout keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Show, for every provider key, whether it is set in the environment,
    /// in the OS keychain, or missing (never the key itself).
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Store a provider key in the OS keychain. The key is read from
    /// standard input (one line; typing is not shown on a terminal), so it
    /// never appears in shell history or the process list.
    #[command(after_help = "Example: printf '%s\\n' \"$KEY\" | cutout keys set removebg")]
    Set {
        /// uploadcare | removit | removebgvideo | removebg
        #[arg(value_name = "PROVIDER")]
        provider: ProviderId,
        /// Which key, for providers with more than one (Uploadcare:
        /// public_key or secret_key).
        #[arg(long, value_name = "ID")]
        credential: Option<String>,
    },
    /// Remove a provider's key from the OS keychain (all of its keys unless
    /// --credential names one).
    Delete {
        /// uploadcare | removit | removebgvideo | removebg
        #[arg(value_name = "PROVIDER")]
        provider: ProviderId,
        /// Only this key (Uploadcare: public_key or secret_key).
        #[arg(long, value_name = "ID")]
        credential: Option<String>,
    },
    /// Ask the provider whether it accepts the keys found (environment
    /// first, then the keychain), with one free call.
    #[command(
        after_help = "Exit status: 0 the key was accepted; 1 it was refused, or the check could \
                      not be completed; 2 bad usage or no key set."
    )]
    Test {
        /// uploadcare | removit | removebgvideo | removebg
        #[arg(value_name = "PROVIDER")]
        provider: ProviderId,
    },
}

/// Runs one `cutout keys` command and returns the exit status.
pub(super) fn run(args: KeysArgs) -> Result<u8, UsageError> {
    let keychain = Keychain::default();
    match args.command {
        KeysCommand::Status { json } => status(&keychain, json),
        KeysCommand::Set {
            provider,
            credential,
        } => set(&keychain, provider, credential.as_deref()),
        KeysCommand::Delete {
            provider,
            credential,
        } => delete(&keychain, provider, credential.as_deref()),
        KeysCommand::Test { provider } => test(provider),
    }
}

fn status(keychain: &Keychain, as_json: bool) -> Result<u8, UsageError> {
    let keychain_status = keychain.status();
    let available = keychain_status == KeychainStatus::Available;
    if as_json {
        let mut listed = Vec::new();
        for id in ProviderId::ALL {
            for spec in id.info().credentials {
                let in_environment = process_env(spec.env_var).is_some();
                let (in_keychain, error) = if available {
                    match keychain.has(id, spec.id) {
                        Ok(has) => (Some(has), None),
                        Err(e) => (None, Some(e.to_string())),
                    }
                } else {
                    (None, None)
                };
                let source = if in_environment {
                    Some("environment")
                } else if in_keychain == Some(true) {
                    Some("keychain")
                } else {
                    None
                };
                listed.push(json!({
                    "provider": id, "credential": spec.id, "label": spec.label,
                    "env_var": spec.env_var, "environment": in_environment,
                    "keychain": in_keychain, "source": source, "error": error,
                }));
            }
        }
        let keychain_json = match &keychain_status {
            KeychainStatus::Available => {
                json!({"available": true, "service": keychain.service()})
            }
            KeychainStatus::Unavailable { reason, fix } => json!({
                "available": false, "service": keychain.service(), "reason": reason, "fix": fix,
            }),
        };
        println!(
            "{}",
            json!({"keychain": keychain_json, "credentials": listed})
        );
        return Ok(EXIT_ALL_DONE);
    }

    match &keychain_status {
        KeychainStatus::Available => println!(
            "OS keychain: available (entries under the service \"{}\")",
            keychain.service()
        ),
        KeychainStatus::Unavailable { reason, fix } => {
            println!("OS keychain: not available: {reason}.");
            println!("  What to do: {fix}");
        }
    }
    for id in ProviderId::ALL {
        let info = id.info();
        println!();
        println!("{} ({id})", info.name);
        for spec in info.credentials {
            let in_environment = process_env(spec.env_var).is_some();
            let in_keychain = if available {
                keychain.has(id, spec.id)
            } else {
                Ok(false)
            };
            let state = match (in_environment, in_keychain) {
                (true, Ok(true)) => format!(
                    "set in the environment ({}), which overrides the one in the keychain",
                    spec.env_var
                ),
                (true, _) => format!("set in the environment ({})", spec.env_var),
                (false, Ok(true)) => "set in the keychain".to_owned(),
                (false, Ok(false)) => format!(
                    "missing: run `{}` or set {}",
                    set_command(id, spec),
                    spec.env_var
                ),
                (false, Err(e)) => format!("unknown: {e}"),
            };
            println!("  {}: {state}", spec.label);
        }
    }
    Ok(EXIT_ALL_DONE)
}

/// The command that sets this credential.
fn set_command(id: ProviderId, spec: &CredentialSpec) -> String {
    if id.info().credentials.len() > 1 {
        format!("cutout keys set {id} --credential {}", spec.id)
    } else {
        format!("cutout keys set {id}")
    }
}

/// The credential a command is about: the one named, or the provider's only
/// one.
fn chosen(id: ProviderId, credential: Option<&str>) -> Result<&'static CredentialSpec, UsageError> {
    let credentials = id.info().credentials;
    match (credential, credentials) {
        (Some(credential), _) => {
            credential_spec(id, credential).map_err(|e| UsageError::new(e.to_string()))
        }
        (None, []) => Err(UsageError::new(format!(
            "{} needs no key: it runs on this computer",
            id.info().name
        ))),
        (None, [only]) => Ok(only),
        (None, several) => {
            let choices: Vec<_> = several
                .iter()
                .map(|c| format!("--credential {}", c.id))
                .collect();
            Err(UsageError::new(format!(
                "{} has {} keys; say which with {}",
                id.info().name,
                several.len(),
                choices.join(" or ")
            )))
        }
    }
}

fn set(keychain: &Keychain, id: ProviderId, credential: Option<&str>) -> Result<u8, UsageError> {
    let spec = chosen(id, credential)?;
    if let KeychainStatus::Unavailable { reason, fix } = keychain.status() {
        return Err(UsageError::new(format!(
            "cannot store the key: the OS keychain is not available: {reason}. {fix}"
        )));
    }
    let name = id.info().name;
    let Some(secret) = read_key(&format!("{name} {}", spec.label))? else {
        return Ok(EXIT_INTERRUPTED);
    };
    keychain
        .set(id, spec.id, &secret)
        .map_err(|e| UsageError::new(format!("cannot store the key: {e}")))?;
    println!("Saved the {name} {} in the OS keychain.", spec.label);
    if process_env(spec.env_var).is_some() {
        println!(
            "Note: {} is set in this environment and overrides the keychain.",
            spec.env_var
        );
    }
    println!("Check it with `cutout keys test {id}`.");
    Ok(EXIT_ALL_DONE)
}

fn delete(keychain: &Keychain, id: ProviderId, credential: Option<&str>) -> Result<u8, UsageError> {
    let specs: Vec<&CredentialSpec> = match credential {
        Some(credential) => vec![chosen(id, Some(credential))?],
        None => id.info().credentials.iter().collect(),
    };
    if let KeychainStatus::Unavailable { reason, fix } = keychain.status() {
        return Err(UsageError::new(format!(
            "cannot delete the key: the OS keychain is not available: {reason}. {fix}"
        )));
    }
    let name = id.info().name;
    for spec in specs {
        let deleted = keychain
            .delete(id, spec.id)
            .map_err(|e| UsageError::new(format!("cannot delete the key: {e}")))?;
        if deleted {
            println!("Deleted the {name} {} from the OS keychain.", spec.label);
        } else {
            println!("The OS keychain held no {name} {}.", spec.label);
        }
        if process_env(spec.env_var).is_some() {
            println!(
                "Note: {} is still set in this environment and is used instead.",
                spec.env_var
            );
        }
    }
    Ok(EXIT_ALL_DONE)
}

fn test(id: ProviderId) -> Result<u8, UsageError> {
    let info = id.info();
    let (credentials, problems) = Keys::for_this_process().credentials(id);
    for problem in &problems {
        eprintln!("warning: {problem}");
    }
    let missing: Vec<String> = info
        .credentials
        .iter()
        .filter(|spec| credentials.get(spec.id).is_none())
        .map(|spec| {
            format!(
                "{} (run `{}` or set {})",
                spec.label,
                set_command(id, spec),
                spec.env_var
            )
        })
        .collect();
    if !missing.is_empty() {
        return Err(UsageError::new(format!(
            "{} is not set up: no {}",
            info.name,
            missing.join(" and no ")
        )));
    }
    let sources: Vec<&str> = info
        .credentials
        .iter()
        .filter_map(|spec| credentials.source(spec.id))
        .collect();
    let config = ProviderConfig {
        endpoints: config::endpoints(id, &process_env)?,
        credentials,
        http: http_client()?,
        data_dir: None,
    };
    let outcome = runtime()?.block_on(providers::test_key(id, &config));
    let from = if sources.iter().all(|s| *s == "environment") {
        "from the environment"
    } else if sources.iter().all(|s| *s == "keychain") {
        "from the keychain"
    } else {
        "from the environment and the keychain"
    };
    match outcome {
        Ok(check) => {
            let detail = check.detail.map(|d| format!(": {d}")).unwrap_or_default();
            println!("{} accepted the key {from}{detail}.", info.name);
            Ok(EXIT_ALL_DONE)
        }
        Err(ProviderError::Unauthorized { message }) => {
            let fix = if from == "from the keychain" {
                format!("Set the right one with `cutout keys set {id}`.")
            } else {
                let variables: Vec<_> = info.credentials.iter().map(|c| c.env_var).collect();
                format!(
                    "Check {}, or unset it and use `cutout keys set {id}`.",
                    variables.join(" and ")
                )
            };
            eprintln!(
                "error: the key {from} was refused by {}: {message}. {fix}",
                info.name
            );
            Ok(EXIT_SOME_FAILED)
        }
        Err(ProviderError::Config(message)) => Err(UsageError::new(message)),
        Err(other) => {
            eprintln!("error: could not check the key with {}: {other}", info.name);
            Ok(EXIT_SOME_FAILED)
        }
    }
}

/// Reads one line from standard input as a key: trimmed, not empty, no
/// control characters. On a terminal, asks for it and hides the typing;
/// `None` when the user pressed Ctrl-C instead.
fn read_key(what: &str) -> Result<Option<SecretString>, UsageError> {
    let mut line = if std::io::stdin().is_terminal() {
        match read_hidden_line(what)? {
            Some(line) => line,
            None => return Ok(None),
        }
    } else {
        read_line()?
    };
    let key = line.trim().to_owned();
    line.zeroize();
    let key = SecretString::from(key);
    if key.expose_secret().is_empty() {
        return Err(UsageError::new(
            "no key was given: paste it when asked, or pipe it in, e.g. \
             printf '%s\\n' \"$KEY\" | cutout keys set PROVIDER",
        ));
    }
    if key.expose_secret().chars().any(char::is_control) {
        return Err(UsageError::new(
            "the key contains control characters; give only the key, on one line",
        ));
    }
    Ok(Some(key))
}

fn read_line() -> Result<String, UsageError> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .read_until(b'\n', &mut bytes)
        .map_err(|e| UsageError::new(format!("cannot read the key from standard input: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        e.into_bytes().zeroize();
        UsageError::new("the key on standard input is not text")
    })
}

/// Asks for the key on the terminal with echo off, restoring the terminal
/// whether the user answers or presses Ctrl-C.
fn read_hidden_line(what: &str) -> Result<Option<String>, UsageError> {
    let echo = EchoOff::new();
    let hint = if echo.is_hiding() {
        "it is not shown as you type"
    } else {
        "it WILL be shown as you type; pipe it in to avoid that"
    };
    eprint!("Paste the {what} and press Enter ({hint}): ");
    let _ = std::io::stderr().flush();
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = sender.send(read_line());
    });
    let answer = runtime()?.block_on(async {
        tokio::select! {
            line = receiver => line.ok(),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    drop(echo);
    eprintln!();
    answer.transpose()
}

/// Terminal echo switched off (through `stty`, on Unix) until dropped.
struct EchoOff {
    saved: Option<String>,
}

impl EchoOff {
    #[cfg(unix)]
    fn new() -> EchoOff {
        let stty = |args: &[&str]| {
            let tty = std::fs::File::open("/dev/tty").ok()?;
            let output = std::process::Command::new("stty")
                .args(args)
                .stdin(tty)
                .stderr(std::process::Stdio::null())
                .output()
                .ok()?;
            output
                .status
                .success()
                .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        };
        let saved = stty(&["-g"]).filter(|s| !s.is_empty());
        let saved = saved.filter(|_| stty(&["-echo"]).is_some());
        EchoOff { saved }
    }

    #[cfg(not(unix))]
    fn new() -> EchoOff {
        EchoOff { saved: None }
    }

    fn is_hiding(&self) -> bool {
        self.saved.is_some()
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let (Some(saved), Ok(tty)) = (&self.saved, std::fs::File::open("/dev/tty")) {
            let _ = std::process::Command::new("stty")
                .arg(saved)
                .stdin(tty)
                .status();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Cli, CliCommand};
    use super::*;
    use clap::Parser;

    fn parse(argv: &[&str]) -> KeysCommand {
        let mut full = vec!["cutout", "keys"];
        full.extend_from_slice(argv);
        match Cli::try_parse_from(full).unwrap().command {
            Some(CliCommand::Keys(args)) => args.command,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_provider_with_one_key_needs_no_credential_and_uploadcare_must_say_which() {
        assert_eq!(chosen(ProviderId::Removebg, None).unwrap().id, "key");
        let error = chosen(ProviderId::Uploadcare, None).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Uploadcare (Remove.bg add-on) has 2 keys; say which with --credential public_key or --credential secret_key"
        );
        assert_eq!(
            chosen(ProviderId::Uploadcare, Some("secret_key"))
                .unwrap()
                .env_var,
            "CUTOUT_UPLOADCARE_SECRET_KEY"
        );
        assert!(chosen(ProviderId::Removit, Some("secret_key")).is_err());
    }

    #[test]
    fn the_key_is_never_an_argument() {
        assert!(matches!(
            parse(&["set", "uploadcare", "--credential", "public_key"]),
            KeysCommand::Set { provider: ProviderId::Uploadcare, credential: Some(c) } if c == "public_key"
        ));
        let mut argv = vec!["cutout", "keys", "set", "removebg", "rbg_secret"];
        assert!(Cli::try_parse_from(&argv).is_err());
        argv.truncate(4);
        assert!(Cli::try_parse_from(&argv).is_ok());
    }

    #[test]
    fn the_set_hint_names_the_credential_only_when_there_are_several() {
        let uploadcare = &ProviderId::Uploadcare.info().credentials[1];
        assert_eq!(
            set_command(ProviderId::Uploadcare, uploadcare),
            "cutout keys set uploadcare --credential secret_key"
        );
        let removit = &ProviderId::Removit.info().credentials[0];
        assert_eq!(
            set_command(ProviderId::Removit, removit),
            "cutout keys set removit"
        );
    }
}
