//! `mptcp-eavesdrop`: coverage and attacks on a capture of one path of an
//! MPTCP connection.  Exit status: 0 done, 1 the input could not be used,
//! 2 bad command line.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use mptcp_eavesdrop::capture;
use mptcp_eavesdrop::model::ByteModel;
use mptcp_eavesdrop::{hexdump, keylog, report, rewrite, streams};

#[derive(Parser)]
#[command(
    name = "mptcp-eavesdrop",
    version,
    about = "What one path of an MPTCP connection gives away"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Direction {
    /// Data the MP_CAPABLE client sent (side A when no handshake was seen).
    #[value(alias = "c2s")]
    ClientToServer,
    /// Data the server sent.
    #[value(alias = "s2c")]
    ServerToClient,
}

impl Direction {
    fn side(self) -> usize {
        match self {
            Direction::ClientToServer => 0,
            Direction::ServerToClient => 1,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Paper,
    Hardened,
}

#[derive(Subcommand)]
enum Command {
    /// Follow the MPTCP subflows in a capture of one path, report each
    /// stream's coverage and what the key and chain attacks recover.
    Analyze(AnalyzeArgs),
    /// Print the first data segment(s) as a Wireshark-style hex dump.
    Hexdump(HexdumpArgs),
    /// Write a copy of a plain capture whose stream is scrambled as the
    /// module would have sent it (for experiments on a kernel without the
    /// module).  Needs the MP_CAPABLE keys in the capture and the stream's
    /// plaintext.
    Scramble(ScrambleArgs),
}

#[derive(Args)]
struct AnalyzeArgs {
    /// pcap or pcapng file of one path (Ethernet, Linux cooked v1/v2 or
    /// raw IP; IPv4 and IPv6), e.g. from `tcpdump -i veth -w FILE`.
    capture: PathBuf,
    /// The true plaintext of the analysed stream (the one with the most
    /// captured bytes, after --connection/--direction), to score the
    /// recovery against.
    #[arg(long)]
    truth: Option<PathBuf>,
    /// An unrelated plaintext of the same kind (the same pattern with
    /// another seed): the recovery scored against it is the blind-guess
    /// baseline that --truth's figures must beat to mean anything.
    #[arg(long)]
    baseline_truth: Option<PathBuf>,
    /// The connections' transform: paper (the ring) or hardened (a
    /// preamble, then a ChaCha20 keystream; the offer `1e 04 f1 02` on
    /// the SYNs says so).
    #[arg(long, value_enum, default_value = "paper")]
    mode: ModeArg,
    /// TEST ONLY: a kernel log with the module's `keylog` lines
    /// (net.mptcp_scramble.keylog=1), to decrypt hardened streams with.
    #[arg(long)]
    keylog: Option<PathBuf>,
    /// Byte model for the attack: english, http, uniform, or a sample
    /// file of the traffic to learn byte frequencies from.
    #[arg(long, default_value = "english")]
    model: String,
    /// Only this direction.
    #[arg(long, value_enum)]
    direction: Option<Direction>,
    /// Only this connection (numbered as in the report).
    #[arg(long)]
    connection: Option<usize>,
    /// Print one JSON object instead of the text report.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct HexdumpArgs {
    /// pcap or pcapng file.
    capture: PathBuf,
    /// Dump the first TCP segments that carry data (the only mode).
    #[arg(long, required = true)]
    first_data: bool,
    /// How many segments.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    count: u32,
    /// Dump only the TCP payload, not the whole frame.
    #[arg(long)]
    payload_only: bool,
}

#[derive(Args)]
struct ScrambleArgs {
    /// Plain pcap or pcapng capture holding the MP_CAPABLE handshake.
    capture: PathBuf,
    /// Where to write the scrambled copy (pcap).
    output: PathBuf,
    /// The plaintext the stream carried.
    #[arg(long)]
    truth: PathBuf,
    #[arg(long, value_enum, default_value = "client-to-server")]
    direction: Direction,
    #[arg(long, default_value_t = 1)]
    connection: usize,
    /// Keep only the frames to or from this address (one path of an
    /// all-paths capture).
    #[arg(long)]
    only_host: Option<IpAddr>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("mptcp-eavesdrop: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Ok: the command did its work. Err: why the input could not be used.
fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Analyze(a) => analyze(&a)?,
        Command::Hexdump(a) => hexdump(&a)?,
        Command::Scramble(a) => scramble(&a)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn read_file(what: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{what} {}", path.display()))
}

fn analyze(a: &AnalyzeArgs) -> Result<()> {
    let path = &a.capture;
    let model = ByteModel::named(&a.model).map_err(anyhow::Error::msg)?;
    let truth = a
        .truth
        .as_ref()
        .map(|p| read_file("--truth", p).map(|t| (p.display().to_string(), t)))
        .transpose()?;
    let baseline = a
        .baseline_truth
        .as_ref()
        .map(|p| read_file("--baseline-truth", p).map(|t| (p.display().to_string(), t)))
        .transpose()?;
    let keylog = match &a.keylog {
        Some(p) => {
            let text = read_file("--keylog", p)?;
            keylog::parse(&String::from_utf8_lossy(&text))
                .with_context(|| format!("--keylog {}", p.display()))?
        }
        None => Vec::new(),
    };
    let cap = capture::read(path)?;
    let analysis = streams::analyze(&cap);
    if let Some(n) = a.connection {
        if !analysis.connections.iter().any(|c| c.number == n) {
            bail!(
                "{}: no connection {n}; the capture has {} MPTCP connection(s)",
                path.display(),
                analysis.connections.len()
            );
        }
    }
    let opts = report::Options {
        connection: a.connection,
        side: a.direction.map(Direction::side),
        model: &model,
        truth: truth.as_ref().map(|(p, t)| (p.as_str(), t.as_slice())),
        baseline: baseline.as_ref().map(|(p, t)| (p.as_str(), t.as_slice())),
        mode: match a.mode {
            ModeArg::Paper => report::Mode::Paper,
            ModeArg::Hardened => report::Mode::Hardened,
        },
        keylog: &keylog,
    };
    let r = report::build(
        &path.display().to_string(),
        cap.frames.len(),
        cap.segments.len(),
        &analysis,
        &opts,
    );
    if a.json {
        let text = serde_json::to_string_pretty(&r).context("cannot encode the report")?;
        println!("{text}");
    } else {
        print!("{}", report::human(&r));
    }
    Ok(())
}

fn hexdump(a: &HexdumpArgs) -> Result<()> {
    let cap = capture::read(&a.capture)?;
    let text = hexdump::first_data(&cap, a.count as usize, a.payload_only);
    if text.is_empty() {
        bail!("{}: no TCP segment carries data", a.capture.display());
    }
    print!("{text}");
    Ok(())
}

fn scramble(a: &ScrambleArgs) -> Result<()> {
    let truth = read_file("--truth", &a.truth)?;
    let mut cap = capture::read(&a.capture)?;
    let analysis = streams::analyze(&cap);
    let done = rewrite::scramble(
        &mut cap,
        &analysis,
        a.connection,
        a.direction.side(),
        &truth,
        &a.output,
        a.only_host,
    )?;
    eprintln!(
        "scrambled {} bytes ({} differed from --truth before, {} past its end left alone); wrote {} frames to {}",
        done.bytes,
        done.differing,
        done.beyond_truth,
        done.frames_written,
        a.output.display()
    );
    Ok(())
}
