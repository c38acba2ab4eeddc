//! Packs one host file into a gzip tar layer and prints the layer's digest
//! and size. `scripts/bench-pack-rss` runs it to measure peak memory.
//!
//! Usage: `pack_layer FILE [OUT]`. OUT defaults to `/dev/null`.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;

use kuul::image::layer::write_layer;
use kuul::sources::{Content, Entry, EntryKind, LayerContent};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(input) = args.next().map(PathBuf::from) else {
        eprintln!("usage: pack_layer FILE [OUT]");
        return ExitCode::from(2);
    };
    let output = args.next().map_or_else(|| PathBuf::from("/dev/null"), PathBuf::from);

    match pack(input, output) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn pack(input: PathBuf, output: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let size = std::fs::metadata(&input)?.len();
    let entry = Entry {
        path: "/data/payload".to_string(),
        kind: EntryKind::File { content: Content::Host(input), size },
        mode: 0o644,
        uid: 0,
        gid: 0,
    };
    let layer = LayerContent { description: "benchmark".to_string(), entries: vec![entry] };

    let out = BufWriter::new(File::create(&output)?);
    let stats = write_layer(&layer, 0, out)?;

    println!("{} {} bytes", stats.digest, stats.size);
    Ok(())
}
