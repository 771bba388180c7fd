//! A real Mosquitto broker for tests, on a free loopback port, with persistence so that a
//! restart keeps its sessions. Stopped when dropped.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{free_port, temp_dir};

pub struct Broker {
    pub port: u16,
    /// A second listener that speaks TLS and requires a client certificate, when started with
    /// [`Broker::start_tls`].
    pub tls: Option<TlsListener>,
    dir: PathBuf,
    child: Option<Child>,
}

/// The TLS listener's port and the test PKI made for it with `openssl`: a CA, the broker's
/// certificate for 127.0.0.1, a client certificate signed by the CA, and a second CA that
/// signed nothing here.
pub struct TlsListener {
    pub port: u16,
    pub ca: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub other_ca: PathBuf,
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl (Debian package openssl) must be installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, and certificates it signs for the broker (127.0.0.1) and a client.
fn make_pki(dir: &std::path::Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for ca in ["ca", "other-ca"] {
        let mut a = vec!["req", "-x509"];
        a.extend(ec);
        let (key, pem, subj) = (
            format!("{ca}.key"),
            format!("{ca}.pem"),
            format!("/CN=Tvilling test {ca}"),
        );
        a.extend(["-keyout", &key, "-out", &pem, "-days", "2", "-subj", &subj]);
        openssl(dir, &a);
    }
    for (name, ext) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature",
        ),
        (
            "client",
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\nkeyUsage=digitalSignature",
        ),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).expect("ext");
        let mut a = vec!["req"];
        a.extend(ec);
        let (key, csr, subj) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("/CN=tvilling-{name}"),
        );
        a.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
        openssl(dir, &a);
        let (pem, extfile) = (format!("{name}.pem"), format!("{name}.ext"));
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &extfile,
            ],
        );
    }
}

impl Broker {
    pub fn start(name: &str) -> Broker {
        let dir = temp_dir(&format!("mosquitto-{name}"));
        let mut b = Broker {
            port: free_port(),
            tls: None,
            dir,
            child: None,
        };
        b.launch();
        b
    }

    /// A broker with a plain listener (for `mosquitto_pub`) and a TLS listener that requires a
    /// client certificate signed by its CA.
    pub fn start_tls(name: &str) -> Broker {
        let dir = temp_dir(&format!("mosquitto-{name}"));
        make_pki(&dir);
        let mut b = Broker {
            port: free_port(),
            tls: Some(TlsListener {
                port: free_port(),
                ca: dir.join("ca.pem"),
                client_cert: dir.join("client.pem"),
                client_key: dir.join("client.key"),
                other_ca: dir.join("other-ca.pem"),
            }),
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
            ) + &self.tls.as_ref().map_or(String::new(), |t| {
                let d = self.dir.display();
                format!(
                    "listener {} 127.0.0.1\ncafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\nrequire_certificate true\n",
                    t.port
                )
            }),
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
        let tls_port = self.tls.as_ref().map_or(self.port, |t| t.port);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err()
            || TcpStream::connect(("127.0.0.1", tls_port)).is_err()
        {
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

    /// Publishes at QoS 0, as many field devices do.
    pub fn publish_qos0(&self, topic: &str, payload: &[u8]) {
        self.publish_qos(topic, payload, false, "0");
    }

    fn publish_with(&self, topic: &str, payload: &[u8], retain: bool) {
        self.publish_qos(topic, payload, retain, "1");
    }

    fn publish_qos(&self, topic: &str, payload: &[u8], retain: bool, qos: &str) {
        let file = self.dir.join("payload.bin");
        std::fs::write(&file, payload).expect("payload");
        let status = Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-q",
                qos,
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
