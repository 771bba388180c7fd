//! A real Mosquitto broker for tests, on a free loopback port, with persistence so that a
//! restart keeps its sessions. Stopped when dropped.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::temp_dir;

pub struct Broker {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Broker {
    pub fn start(name: &str) -> Broker {
        let dir = temp_dir(&format!("mosquitto-{name}"));
        let mut b = Broker {
            port: free_port(),
            dir,
            child: None,
        };
        b.launch();
        b
    }

    fn launch(&mut self) {
        let conf = self.dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\nuser root\nlog_dest stderr\n",
                self.port,
                self.dir.display()
            ),
        )
        .expect("config");
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto (Debian package mosquitto) must be installed");
        self.child = Some(child);
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "mosquitto did not start on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the broker the way a service manager does (SIGTERM: it saves its sessions).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Publishes with `mosquitto_pub` at QoS 1.
    pub fn publish(&self, topic: &str, payload: &[u8]) {
        self.publish_with(topic, payload, false);
    }

    /// Publishes a retained message (delivered to whoever subscribes later).
    pub fn publish_retained(&self, topic: &str, payload: &[u8]) {
        self.publish_with(topic, payload, true);
    }

    fn publish_with(&self, topic: &str, payload: &[u8], retain: bool) {
        let file = self.dir.join("payload.bin");
        std::fs::write(&file, payload).expect("payload");
        let status = Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-q",
                "1",
                "-t",
                topic,
                "-f",
            ])
            .arg(&file)
            .args(if retain { &["-r"][..] } else { &[][..] })
            .status()
            .expect("mosquitto_pub (Debian package mosquitto-clients) must be installed");
        assert!(status.success(), "mosquitto_pub failed");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
