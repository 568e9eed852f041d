//! The yardstick for Cutout's pipeline: the least a program can do to get
//! the same cut-outs from remove.bg. It makes the same HTTP calls as Cutout
//! (one multipart `POST /removebg` per image, with `size` and `format`),
//! with the same number in flight, on tokio and reqwest, and writes each
//! answer to a file: no history, no checks, no retries, no events. With
//! `--durable` it saves each file the way Cutout must (a temporary file,
//! flushed to the disk, then renamed), so that what is compared is the
//! pipeline, not the disk. Run as its own process (`app reference-client
//! …`) so both sides pay for starting a process.

use std::path::PathBuf;

use futures_util::StreamExt as _;
use tokio::io::AsyncWriteExt as _;

/// What the bench passes on the command line.
struct Arguments {
    url: String,
    key: String,
    concurrency: usize,
    out: PathBuf,
    inputs: PathBuf,
    durable: bool,
}

fn arguments(args: &[String]) -> Arguments {
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .unwrap_or_else(|| panic!("reference-client needs {name}"))
            .clone()
    };
    Arguments {
        url: value("--url"),
        key: value("--key"),
        concurrency: value("--concurrency").parse().expect("a number in flight"),
        out: value("--out").into(),
        inputs: value("--inputs").into(),
        durable: args.iter().any(|a| a == "--durable"),
    }
}

/// `app reference-client --url U --key K --concurrency N --out DIR --inputs DIR [--durable]`:
/// every file in the inputs folder through remove.bg, N at a time. Prints
/// how many cut-outs were saved.
pub fn main(args: &[String]) {
    let arguments = arguments(args);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let saved = runtime.block_on(run(arguments));
    println!("{saved}");
}

async fn run(arguments: Arguments) -> usize {
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&arguments.inputs)
        .expect("the inputs folder")
        .map(|entry| entry.expect("a folder entry").path())
        .collect();
    inputs.sort();
    std::fs::create_dir_all(&arguments.out).expect("the output folder");
    let client = reqwest::Client::new();
    let endpoint = format!("{}/removebg", arguments.url);
    let arguments = &arguments;
    futures_util::stream::iter(inputs)
        .map(|path| {
            let client = client.clone();
            let endpoint = endpoint.clone();
            async move {
                let bytes = tokio::fs::read(&path).await.expect("read an input");
                let name = path.file_name().expect("a file name").to_string_lossy();
                let part = reqwest::multipart::Part::bytes(bytes)
                    .file_name(name.into_owned())
                    .mime_str("image/jpeg")
                    .expect("a MIME type");
                let form = reqwest::multipart::Form::new()
                    .part("image_file", part)
                    .text("size", "auto")
                    .text("format", "png");
                let response = client
                    .post(&endpoint)
                    .header("X-Api-Key", &arguments.key)
                    .multipart(form)
                    .send()
                    .await
                    .expect("remove.bg answers");
                assert!(response.status().is_success(), "{}", response.status());
                let cutout = response.bytes().await.expect("the cut-out");
                let stem = path.file_stem().expect("a file stem").to_string_lossy();
                let out = arguments.out.join(format!("{stem}.png"));
                if arguments.durable {
                    let temporary = arguments.out.join(format!(".{stem}.png.partial"));
                    let mut file = tokio::fs::File::create(&temporary)
                        .await
                        .expect("create a temporary file");
                    file.write_all(&cutout).await.expect("write a cut-out");
                    file.flush().await.expect("write a cut-out");
                    file.sync_all().await.expect("flush a cut-out to the disk");
                    tokio::fs::rename(&temporary, &out)
                        .await
                        .expect("rename a cut-out");
                } else {
                    tokio::fs::write(out, cutout)
                        .await
                        .expect("write a cut-out");
                }
            }
        })
        .buffer_unordered(arguments.concurrency)
        .count()
        .await
}
