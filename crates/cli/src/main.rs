//! `mptcp-scramble`: the scrambler of docs/design.md on the command line,
//! byte-exact with the kernel module.
//!
//! - `seed` prints the 32-byte seed of one direction of a connection;
//! - `scramble` and `descramble` stream stdin to stdout through that
//!   direction's state, in constant memory, with the fast path.
//!
//! The seed is computed here with the `hmac` and `sha2` crates, not with
//! the scrambler's own `seed_with` (which the kernel module uses), so that
//! the tests cross-check the two.
//!
//! Exit codes: 0 on success, 2 for usage errors and bad keys (one line on
//! stderr), 141 when stdout's reader went away (what a shell reports for
//! a process killed by SIGPIPE; nothing is printed), 1 for other I/O
//! errors.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use hmac::{Hmac, Mac};
use scramble_core::{State, SEED_LABEL, SEED_LEN};
use sha2::Sha256;

/// How much of the stream is held at once, whatever its length.
const BUF_LEN: usize = 64 << 10;

#[derive(Parser)]
#[command(
    name = "mptcp-scramble",
    version,
    about = "Scramble or descramble a byte stream exactly as the mptcp_scramble kernel module does"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the 32-byte seed of the direction from sender to receiver, as
    /// lowercase hex.
    Seed(Keys),
    /// Scramble stdin to stdout, as the sender's kernel does.
    Scramble(Keys),
    /// Descramble stdin to stdout, as the receiver's kernel does.
    Descramble(Keys),
}

/// The MPTCP keys of the direction's two ends.  Taken as raw strings and
/// checked after parsing, so that a bad key gets a one-line message.
#[derive(Args)]
struct Keys {
    /// The sending end's 64-bit MPTCP key: 16 hex digits, optionally after
    /// 0x.
    #[arg(long, value_name = "HEX", allow_hyphen_values = true)]
    sender_key: OsString,
    /// The receiving end's 64-bit MPTCP key: 16 hex digits, optionally
    /// after 0x.
    #[arg(long, value_name = "HEX", allow_hyphen_values = true)]
    receiver_key: OsString,
}

impl Keys {
    fn seed(&self) -> Result<[u8; SEED_LEN]> {
        let sender = parse_key("sender-key", &self.sender_key)?;
        let receiver = parse_key("receiver-key", &self.receiver_key)?;
        Ok(seed(sender, receiver))
    }
}

/// A key that is not 16 hex digits: a usage error (exit status 2). The
/// message names the key.
#[derive(Debug)]
struct BadKey(String);

impl fmt::Display for BadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadKey {}

/// Stdout's reader went away: not reported, only an exit status.
#[derive(Debug)]
struct StdoutClosed;

impl fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stdout closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// What a shell reports for a process killed by SIGPIPE.
const EXIT_STDOUT_CLOSED: u8 = 141;

/// An error writing stdout.
fn writing(error: io::Error) -> anyhow::Error {
    if error.kind() == ErrorKind::BrokenPipe {
        StdoutClosed.into()
    } else {
        anyhow::Error::new(error).context("writing stdout")
    }
}

/// A 64-bit key from exactly 16 hex digits, optionally after `0x`.
fn parse_key(option: &str, value: &OsStr) -> Result<u64, BadKey> {
    let bad = || {
        BadKey(format!(
            "invalid --{option} \"{}\": expected 16 hex digits, optionally after 0x",
            value.to_string_lossy().escape_debug()
        ))
    };
    let text = value.to_str().ok_or_else(bad)?;
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if digits.len() != 16 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    u64::from_str_radix(digits, 16).map_err(|_| bad())
}

/// `HMAC-SHA256(BE64(sender) || BE64(receiver), SEED_LABEL)`
/// (docs/design.md, "Seed").
fn seed(sender: u64, receiver: u64) -> [u8; SEED_LEN] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&sender.to_be_bytes());
    key[8..].copy_from_slice(&receiver.to_be_bytes());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC accepts keys of any length");
    mac.update(SEED_LABEL);
    mac.finalize().into_bytes().into()
}

#[derive(Clone, Copy)]
enum Direction {
    Scramble,
    Descramble,
}

/// Streams stdin to stdout through `state`, one read at a time: the
/// result does not depend on how the reads cut the stream.
fn stream(mut state: State, direction: Direction) -> Result<()> {
    let mut buf = vec![0u8; BUF_LEN];
    let mut stdin = io::stdin().lock();
    let mut stdout = io::stdout().lock();
    loop {
        let len = match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(len) => len,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(error) => return Err(anyhow::Error::new(error).context("reading stdin")),
        };
        let chunk = &mut buf[..len];
        match direction {
            Direction::Scramble => state.scramble(chunk),
            Direction::Descramble => state.descramble(chunk),
        }
        stdout.write_all(chunk).map_err(writing)?;
    }
    stdout.flush().map_err(writing)
}

/// Ok: the command went through, or stopped quietly because stdout's
/// reader went away (the status says which). Err: what stopped it.
fn run(command: Command) -> Result<ExitCode> {
    let done = match command {
        Command::Seed(keys) => {
            let line = hex::encode(keys.seed()?) + "\n";
            let mut stdout = io::stdout().lock();
            stdout
                .write_all(line.as_bytes())
                .and_then(|()| stdout.flush())
                .map_err(writing)
        }
        Command::Scramble(keys) => stream(State::from_seed(&keys.seed()?), Direction::Scramble),
        Command::Descramble(keys) => stream(State::from_seed(&keys.seed()?), Direction::Descramble),
    };
    match done {
        Err(e) if e.is::<StdoutClosed>() => Ok(ExitCode::from(EXIT_STDOUT_CLOSED)),
        done => done.map(|()| ExitCode::SUCCESS),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(status) => status,
        Err(e) => {
            // Nothing better to do if stderr is gone too.
            let _ = writeln!(io::stderr(), "mptcp-scramble: {e:#}");
            ExitCode::from(if e.is::<BadKey>() { 2 } else { 1 })
        }
    }
}
