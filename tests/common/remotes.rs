//! Real git remotes for delivery tests: a bare repository behind git's own
//! HTTP backend served by lighttpd with basic authentication, and behind a
//! real OpenSSH server with a key and a host key to pin (both Debian's).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A bare repository with `main` (one commit: `README.md`), the team's remote.
pub fn bare_remote(dir: &Path, name: &str) -> (PathBuf, String) {
    let seed = dir.join(format!("{name}-seed"));
    std::fs::create_dir_all(&seed).unwrap();
    super::git(&seed, &["init", "--quiet", "-b", "main"]);
    std::fs::write(seed.join("README.md"), "# remote\n").unwrap();
    std::fs::write(seed.join("shared.txt"), "one\ntwo\nthree\n").unwrap();
    super::git(&seed, &["add", "."]);
    super::git(&seed, &["commit", "--quiet", "-m", "first"]);
    let head = super::git(&seed, &["rev-parse", "HEAD"]).trim().to_string();
    let bare = dir.join(format!("{name}.git"));
    super::git(
        dir,
        &[
            "clone",
            "--quiet",
            "--bare",
            seed.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    super::git(&bare, &["config", "http.receivepack", "true"]);
    (bare, head)
}

/// The commit `reference` is at in the bare repository `bare`, if it exists.
pub fn ref_of(bare: &Path, reference: &str) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(bare)
        .args(["rev-parse", "--verify", "--quiet", reference])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited: {status}");
        }
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// git's HTTP backend behind lighttpd, basic auth with one user.
pub struct HttpRemote {
    child: Child,
    /// The directory the repositories are served from (`/git/<name>.git`).
    pub root: PathBuf,
    /// Where lighttpd writes its access log (one line per request).
    pub access_log: PathBuf,
    pub port: u16,
}

impl HttpRemote {
    /// Serves the repositories under `root` on `port` (0: any free port),
    /// letting `user`:`password` in.
    pub fn start(root: &Path, port: u16, user: &str, password: &str) -> HttpRemote {
        HttpRemote::serve(root, port, user, password, &[("url", "^/git/")])
    }

    /// Like [`HttpRemote::start`], but anyone may fetch and only pushes need
    /// the password (git's usual smart-HTTP setup for a readable project).
    pub fn public_read(root: &Path, user: &str, password: &str) -> HttpRemote {
        HttpRemote::serve(
            root,
            0,
            user,
            password,
            &[
                ("url", "/git-receive-pack$"),
                ("querystring", "service=git-receive-pack"),
            ],
        )
    }

    fn serve(
        root: &Path,
        port: u16,
        user: &str,
        password: &str,
        guarded: &[(&str, &str)],
    ) -> HttpRemote {
        let port = if port == 0 { free_port() } else { port };
        let conf_dir = root.join(format!("lighttpd-{port}"));
        std::fs::create_dir_all(&conf_dir).unwrap();
        let users = conf_dir.join("users");
        std::fs::write(&users, format!("{user}:{password}\n")).unwrap();
        let access_log = conf_dir.join("access.log");
        let config = conf_dir.join("lighttpd.conf");
        std::fs::write(
            &config,
            format!(
                r#"server.document-root = "{root}"
server.bind = "127.0.0.1"
server.port = {port}
server.modules = ("mod_alias", "mod_setenv", "mod_cgi", "mod_auth", "mod_authn_file", "mod_accesslog")
server.errorlog = "{dir}/error.log"
accesslog.filename = "{access}"
alias.url = ("/git/" => "/usr/lib/git-core/git-http-backend/")
$HTTP["url"] =~ "^/git/" {{
  cgi.assign = ("" => "")
  setenv.add-environment = ("GIT_PROJECT_ROOT" => "{root}", "GIT_HTTP_EXPORT_ALL" => "")
}}
{guards}"#,
                root = root.display(),
                dir = conf_dir.display(),
                access = access_log.display(),
                guards = guarded
                    .iter()
                    .map(|(field, pattern)| format!(
                        "$HTTP[\"{field}\"] =~ \"{pattern}\" {{\n  auth.backend = \"plain\"\n  \
                         auth.backend.plain.userfile = \"{users}\"\n  auth.require = (\"\" => \
                         (\"method\" => \"basic\", \"realm\" => \"git\", \"require\" => \
                         \"valid-user\"))\n}}\n",
                        users = users.display()
                    ))
                    .collect::<String>(),
            ),
        )
        .unwrap();
        let mut child = Command::new("/usr/sbin/lighttpd")
            .args(["-D", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("lighttpd (Debian package lighttpd)");
        wait_for_port(port, &mut child, "lighttpd");
        HttpRemote {
            child,
            root: root.to_path_buf(),
            access_log,
            port,
        }
    }

    /// The URL of repository `name` (`<name>.git` under the root).
    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/git/{name}.git", self.port)
    }

    /// Requests lighttpd answered with `status` so far.
    pub fn answered(&self, status: u16) -> usize {
        let log = std::fs::read_to_string(&self.access_log).unwrap_or_default();
        let needle = format!("\" {status} ");
        log.lines().filter(|line| line.contains(&needle)).count()
    }
}

impl Drop for HttpRemote {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// OpenSSH's server with one authorised key, serving git over ssh as root.
pub struct SshRemote {
    child: Child,
    pub port: u16,
    /// The client's private key (OpenSSH format).
    pub client_key: String,
    /// A `known_hosts` line pinning this server's host key.
    pub known_hosts: String,
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "agentd-test", "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen (Debian package openssh-client)");
    assert!(out.status.success(), "ssh-keygen: {out:?}");
}

impl SshRemote {
    /// Starts sshd on a free port with a fresh host key and client key.
    pub fn start(dir: &Path) -> SshRemote {
        let port = free_port();
        let conf_dir = dir.join(format!("sshd-{port}"));
        std::fs::create_dir_all(&conf_dir).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let host_key = conf_dir.join("host_key");
        let client = conf_dir.join("client_key");
        keygen(&host_key);
        keygen(&client);
        let authorized = conf_dir.join("authorized_keys");
        std::fs::copy(client.with_extension("pub"), &authorized).unwrap();
        let config = conf_dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nAuthorizedKeysFile {auth}\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPidFile none\n\
                 LogLevel ERROR\n",
                host = host_key.display(),
                auth = authorized.display(),
            ),
        )
        .unwrap();
        let mut child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("sshd (Debian package openssh-server)");
        wait_for_port(port, &mut child, "sshd");
        let public = std::fs::read_to_string(host_key.with_extension("pub")).unwrap();
        let mut fields = public.split_whitespace();
        let (kind, key) = (fields.next().unwrap(), fields.next().unwrap());
        SshRemote {
            child,
            port,
            client_key: std::fs::read_to_string(&client).unwrap(),
            known_hosts: format!("[127.0.0.1]:{port} {kind} {key}\n"),
        }
    }

    /// The ssh URL of the bare repository at `path`.
    pub fn url(&self, path: &Path) -> String {
        format!("ssh://root@127.0.0.1:{}{}", self.port, path.display())
    }

    /// A `known_hosts` line for this address with another (fresh) key: what
    /// a man in the middle would present.
    pub fn wrong_known_hosts(&self, dir: &Path) -> String {
        let other = dir.join(format!("impostor-{}", self.port));
        keygen(&other);
        let public = std::fs::read_to_string(other.with_extension("pub")).unwrap();
        let mut fields = public.split_whitespace();
        let (kind, key) = (fields.next().unwrap(), fields.next().unwrap());
        format!("[127.0.0.1]:{} {kind} {key}\n", self.port)
    }
}

impl Drop for SshRemote {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
