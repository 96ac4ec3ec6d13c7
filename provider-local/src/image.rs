//! What runs inside an instance process (`plinth-local instance <dir>`): the images.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::catalog::{Image, HTTP_IMAGE_PORT};
use crate::supervisor::{files, InstanceBoot};

/// Why an instance process could not run.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Reading its directory or binding its address failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The failure.
        source: std::io::Error,
    },
    /// The boot file was not valid.
    #[error("boot file: {0}")]
    Boot(#[from] serde_json::Error),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ImageError {
    let what = what.into();
    move |source| ImageError::Io { what, source }
}

/// Runs the instance whose directory is `dir` until SIGTERM.
pub async fn run(dir: &Path) -> Result<(), ImageError> {
    let boot: InstanceBoot = serde_json::from_slice(
        &std::fs::read(dir.join(files::BOOT)).map_err(io("reading boot.json"))?,
    )?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(io("installing the SIGTERM handler"))?;
    match boot.image {
        Image::Http => {
            let addr = (boot.address, HTTP_IMAGE_PORT);
            let listener = TcpListener::bind(addr)
                .await
                .map_err(io(format!("binding {}:{HTTP_IMAGE_PORT}", boot.address)))?;
            mark_ready(dir)?;
            let body = format!(
                "instance={} az={} name={}\n",
                boot.id, boot.availability_zone, boot.name
            );
            tracing::info!(address = %boot.address, "http image serving on port {HTTP_IMAGE_PORT}");
            tokio::select! {
                _ = serve_http(listener, body) => {}
                _ = term.recv() => {}
            }
        }
        Image::Shell => {
            mark_ready(dir)?;
            let script = dir.join(files::USER_DATA);
            if script.exists() {
                let volumes = std::env::join_paths(&boot.volumes)
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let mut child = tokio::process::Command::new("sh")
                    .arg(&script)
                    .current_dir(dir)
                    .env("PLINTH_INSTANCE_ID", &boot.id)
                    .env("PLINTH_INSTANCE_NAME", &boot.name)
                    .env("PLINTH_ADDRESS", boot.address.to_string())
                    .env("PLINTH_AZ", &boot.availability_zone)
                    .env("PLINTH_VOLUMES", volumes)
                    .env("PLINTH_VOLUMES_DIR", dir.join(files::VOLUMES))
                    .spawn()
                    .map_err(io("starting the user data script"))?;
                tokio::select! {
                    status = child.wait() => {
                        tracing::info!(?status, "user data script finished; instance keeps running");
                        term.recv().await;
                    }
                    _ = term.recv() => {}
                }
            } else {
                term.recv().await;
            }
        }
    }
    Ok(())
}

/// The ready file holds our pid, so tests (and humans) can find the process.
fn mark_ready(dir: &Path) -> Result<(), ImageError> {
    let tmp = dir.join(format!("{}.tmp", files::READY));
    std::fs::write(&tmp, std::process::id().to_string()).map_err(io("writing the ready file"))?;
    std::fs::rename(&tmp, dir.join(files::READY)).map_err(io("writing the ready file"))
}

/// A minimal HTTP/1.x answer over tokio: every request gets `body` and the connection
/// closes. Enough for LB round robin and HTTP health checks, without an HTTP stack.
async fn serve_http(listener: TcpListener, body: String) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let body = body.clone();
                tokio::spawn(async move {
                    if let Err(e) = answer(stream, &body).await {
                        tracing::debug!("http answer failed: {e}");
                    }
                });
            }
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn answer(mut stream: TcpStream, body: &str) -> std::io::Result<()> {
    // Read the request head (bounded in size and time); the content is not needed.
    let mut buf = vec![0u8; 8192];
    let mut seen = 0;
    let read = async {
        while seen < buf.len() {
            let n = stream.read(&mut buf[seen..]).await?;
            if n == 0 {
                break;
            }
            seen += n;
            if buf[..seen].windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request head"))??;
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
