//! The UDP side: one task reads datagrams for the owner; the owner sends.
//!
//! A failed `send_to` and every entry of the socket error queue become
//! `handle_send_failed` for the core (see [`ocm_io::errqueue`]).

use async_std::net::UdpSocket;
use async_std::task;
use bytes::Bytes;
use ocm_io::{errqueue, Driver, Input, DATAGRAM_BUFFER};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Reads datagrams (and queued errors) until the owner is gone.
pub(crate) async fn read(udp: Arc<UdpSocket>, tx: async_channel::Sender<Input>) {
    let mut buf = vec![0; DATAGRAM_BUFFER];
    loop {
        match udp.recv_from(&mut buf).await {
            Ok((n, from)) => {
                let data = Bytes::copy_from_slice(&buf[..n]);
                if tx.send(Input::Datagram { from, data }).await.is_err() {
                    return;
                }
            }
            Err(error) => {
                let failed = errqueue::drain(&*udp);
                if failed.is_empty() {
                    tracing::debug!(%error, "recv_from failed");
                    task::sleep(Duration::from_millis(1)).await;
                }
                for to in failed {
                    if tx.send(Input::SendFailed { to }).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// Sends every datagram the core has queued, reporting failures back to it.
pub(crate) async fn send_all(udp: &UdpSocket, driver: &mut Driver) {
    while let Some((to, payload)) = driver.poll_datagram() {
        let Err(error) = udp.send_to(&payload, to).await else {
            continue;
        };
        let now = Instant::now();
        for failed in errqueue::drain(udp) {
            driver.handle_send_failed(now, failed);
        }
        if errqueue::is_deferred(&error) && udp.send_to(&payload, to).await.is_ok() {
            continue;
        }
        tracing::debug!(%to, %error, "send_to failed");
        driver.handle_send_failed(now, to);
    }
}
