//! A program that hosts the provider-local helper itself, as the `plinth` CLI does:
//! it needs no separately built `plinth-local`. Creates an `http` instance in a
//! throw-away state dir, fetches its page, and deletes everything.
//!
//! `cargo run -p provider-local --example hosted`

use provider_core::{InstanceSpec, ProviderExt};
use provider_local::{LocalConfig, LocalProvider};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // First thing: when started as the helper, this runs it and exits.
    provider_local::helper::run_if_requested();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("plinth-hosted-{}", std::process::id()));
    let p = LocalProvider::open(LocalConfig::with_state_dir(&dir)).await?;
    let i = p
        .create_instance(&InstanceSpec::new("hello", "local-a", "small", "http"))
        .await?;
    let ip = i.private_ip.ok_or("no address")?;
    let mut s = tokio::net::TcpStream::connect((ip, 8080)).await?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    println!("{}", out.lines().last().unwrap_or_default());
    p.destroy_all().await?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
