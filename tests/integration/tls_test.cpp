// HTTPS on the host's port (issue 11, server.tls): certificates made at test
// time with the openssl command, a real host, and clients that speak TLS
// properly, speak plain HTTP, send garbage, stop half way through the
// handshake or stall in it, and (with client_ca_file) come with and without
// a client certificate. After each, the host still answers HTTPS at once.

#include <gtest/gtest.h>

#include <Poco/UUIDGenerator.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iterator>
#include <memory>
#include <vector>

#include "command.hpp"
#include "host_process.hpp"
#include "raw_http.hpp"
#include "tls_client.hpp"

using namespace eventflow::testing;

namespace {

std::string testName() { return ::testing::UnitTest::GetInstance()->current_test_info()->name(); }

// Runs openssl in `dir`; fails the test if it fails.
void openssl(const fs::path& dir, std::vector<std::string> args) {
  args.insert(args.begin(), "/usr/bin/openssl");
  const auto r = runCommand(args, dir);
  ASSERT_EQ(r.exit_code, 0) << r.describe();
}

// A P-256 key and a certificate for `cn` (and localhost, 127.0.0.1), signed
// by ca.pem/ca.key when `by_ca`, else by itself.
void makeCertificate(const fs::path& dir, const std::string& name, bool by_ca) {
  const std::string subject = "/CN=" + name;
  if (!by_ca) {
    openssl(dir, {"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                  name + ".key", "-out", name + ".pem", "-days", "2", "-subj", subject, "-addext",
                  "subjectAltName=DNS:localhost,IP:127.0.0.1"});
    return;
  }
  openssl(dir, {"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                name + ".key", "-out", name + ".csr", "-subj", subject});
  openssl(dir, {"x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out",
                name + ".pem", "-days", "2"});
}

// A host with server.tls set; the folder holds server.pem/.key (self-signed,
// which the clients trust) and, with `client_ca`, ca.pem and client.pem/.key
// it signed, plus stranger.pem/.key it did not.
class TlsHost {
 public:
  explicit TlsHost(bool client_ca = false) {
    // The certificates must exist before the host's config names them;
    // HostProcess makes the folder, so the config is written with paths
    // relative to it (the host reads them from the config's folder).
    std::string tls = "tls: { cert_file: server.pem, key_file: server.key";
    if (client_ca) tls += ", client_ca_file: ca.pem";
    tls += " }";
    host_ = std::make_unique<HostProcess>(testName(), EVENTFLOW_PIPELINES_DIR, tls);
    makeCertificate(dir(), "server", false);
    if (client_ca) {
      makeCertificate(dir(), "ca", false);
      makeCertificate(dir(), "client", true);
      makeCertificate(dir(), "stranger", false);
    }
  }

  HostProcess& host() { return *host_; }
  const fs::path& dir() const { return host_->dir(); }
  std::string file(const std::string& name) const { return (dir() / name).string(); }

  bool start(bool client_ca = false) {
    return host_->start([this, client_ca] { return getOverTls("/health/ready", client_ca).status == 200; });
  }

  Response getOverTls(const std::string& path, bool with_client_cert = false) {
    TlsConnection c(host_->port(), file("server.pem"), with_client_cert ? file("client.pem") : "",
                    with_client_cert ? file("client.key") : "");
    if (!c.send(get(path))) return {};
    return c.read();
  }

  Response postOverTls(const std::string& body, bool with_client_cert = false) {
    TlsConnection c(host_->port(), file("server.pem"), with_client_cert ? file("client.pem") : "",
                    with_client_cert ? file("client.key") : "");
    if (!c.send(post("/events", body))) return {};
    return c.read();
  }

  // A normal HTTPS post answers 202 within a second: the host is unhurt.
  void expectServesWithinASecond(bool client_ca = false) {
    const auto before = std::chrono::steady_clock::now();
    const auto r = postOverTls(validEvent(1, uuid()).dump(), client_ca);
    EXPECT_EQ(r.status, 202) << r.body;
    EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(1));
  }

 private:
  std::unique_ptr<HostProcess> host_;
};

}  // namespace

TEST(Tls, PostOverHttpsIsAcceptedAndProcessed) {
  TlsHost t;
  if (::testing::Test::HasFatalFailure()) return;
  ASSERT_TRUE(t.start()) << t.host().readLog();

  TlsConnection c(t.host().port(), t.file("server.pem"));
  ASSERT_TRUE(c.handshakeOk()) << c.error();
  EXPECT_TRUE(c.protocol() == "TLSv1.3" || c.protocol() == "TLSv1.2") << c.protocol();
  // Two requests on one connection: keep-alive works over TLS too.
  const std::string id = uuid();
  ASSERT_TRUE(c.send(post("/events", validEvent(2, id).dump())));
  const auto accepted = c.read();
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  EXPECT_EQ(accepted.json()["event_id"], id);
  ASSERT_TRUE(c.send(get("/events/" + id)));
  EXPECT_EQ(c.read().status, 200);

  // Processed: it reaches done through the pipeline like any other event.
  std::string state;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (state != "done" && std::chrono::steady_clock::now() < deadline) {
    state = t.getOverTls("/events/" + id).json().value("state", "");
    if (state != "done") std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(state, "done");
  EXPECT_EQ(t.host().count("SELECT COUNT(*) FROM processed_events WHERE event_id = '" + id + "'"), 1);
}

TEST(Tls, PlainHttpToTheTlsPortIsRefusedAndHttpsStillServes) {
  TlsHost t;
  if (::testing::Test::HasFatalFailure()) return;
  ASSERT_TRUE(t.start()) << t.host().readLog();

  const std::string id = uuid();
  {
    Connection plain(t.host().port());
    ASSERT_TRUE(plain.send(post("/events", validEvent(3, id).dump())));
    const auto r = plain.read();
    // A plain answer saying why, then the close.
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(r.json()["error"]["code"], "tls_required") << r.body;
    EXPECT_TRUE(plain.closedByPeer());
  }
  EXPECT_EQ(t.host().count("SELECT COUNT(*) FROM raw_events WHERE event_id = '" + id + "'"), 0);
  // curl's and Poco's plain client see the same.
  EXPECT_EQ(http(t.host().port(), "GET", "/health/live").status, 400);
  t.expectServesWithinASecond();
}

TEST(Tls, GarbageAndHalfHandshakesDoNotHurtTheHost) {
  TlsHost t;
  if (::testing::Test::HasFatalFailure()) return;
  ASSERT_TRUE(t.start()) << t.host().readLog();

  // Random bytes: not a TLS record; the connection is closed.
  {
    Connection garbage(t.host().port());
    std::string noise(4096, '\0');
    for (std::size_t i = 0; i < noise.size(); ++i) noise[i] = static_cast<char>((i * 7919 + 13) % 251);
    garbage.send(noise);
    EXPECT_TRUE(garbage.closedByPeer());
  }
  // A handshake record that announces 512 bytes and sends 40, then leaves.
  {
    Connection half(t.host().port());
    std::string record = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
    record.resize(45, 'x');
    ASSERT_TRUE(half.send(record));
    half.abort();
  }
  // A TLS client that goes away in the middle of the handshake, many times.
  for (int i = 0; i < 50; ++i) {
    Connection quitter(t.host().port());
    quitter.send(std::string("\x16\x03\x01\x00\x05\x01\x00\x00\x01", 9));
    if (i % 2) quitter.abort();
  }
  ASSERT_TRUE(t.host().running()) << t.host().readLog();
  t.expectServesWithinASecond();
}

TEST(Tls, AClientStalledInTheHandshakeIsClosedAndOthersAreServed) {
  TlsHost t;
  if (::testing::Test::HasFatalFailure()) return;
  ASSERT_TRUE(t.start()) << t.host().readLog();

  // One says nothing at all, one stops inside its ClientHello.
  Connection silent(t.host().port());
  Connection partial(t.host().port());
  ASSERT_TRUE(partial.send(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc", 9)));
  // While they hold their connections, everyone else is served at once.
  t.expectServesWithinASecond();
  // The handshake timeout is 10 s; the sweeper looks once a second.
  EXPECT_TRUE(silent.closedByPeer(Poco::Timespan(15, 0)));
  EXPECT_TRUE(partial.closedByPeer(Poco::Timespan(2, 0)));
  t.expectServesWithinASecond();
}

TEST(Tls, ClientCaFileRequiresACertificateThatCaSigned) {
  TlsHost t(true);
  if (::testing::Test::HasFatalFailure()) return;
  ASSERT_TRUE(t.start(true)) << t.host().readLog();

  auto postWith = [&](const std::string& cert) {
    TlsConnection c(t.host().port(), t.file("server.pem"), cert.empty() ? "" : t.file(cert + ".pem"),
                    cert.empty() ? "" : t.file(cert + ".key"));
    const std::string id = uuid();
    // With TLS 1.3 the client's handshake ends before the server has checked
    // its certificate: a refusal shows at the first read.
    if (c.send(post("/events", validEvent(4, id).dump()))) {
      const auto r = c.read();
      if (r.status == 202) return id;
      EXPECT_EQ(r.status, 0) << r.body;
    }
    EXPECT_EQ(t.host().count("SELECT COUNT(*) FROM raw_events WHERE event_id = '" + id + "'"), 0);
    return std::string();
  };
  EXPECT_EQ(postWith(""), "") << "no client certificate was accepted";
  EXPECT_EQ(postWith("stranger"), "") << "a certificate another CA signed was accepted";
  const std::string id = postWith("client");
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(t.host().count("SELECT COUNT(*) FROM raw_events WHERE event_id = '" + id + "'"), 1);
  t.expectServesWithinASecond(true);
}

TEST(Tls, ProduceSpeaksHttps) {
  TlsHost t;
  if (::testing::Test::HasFatalFailure()) return;
  ASSERT_TRUE(t.start()) << t.host().readLog();
  const std::string url = "https://localhost:" + std::to_string(t.host().port());

  const auto trusted = runCommand({EVENTFLOW_BINARY, "produce", "--url", url, "--cacert", t.file("server.pem"),
                                   "--count", "200", "--concurrency", "4", "--wait", "--wait-timeout", "60"});
  EXPECT_EQ(trusted.exit_code, 0) << trusted.describe();
  EXPECT_NE(trusted.out.find("status codes: 202=200"), std::string::npos) << trusted.out;
  EXPECT_NE(trusted.out.find("events terminal"), std::string::npos) << trusted.out;

  const auto insecure = runCommand({EVENTFLOW_BINARY, "produce", "--url", url, "--insecure", "--count", "20",
                                    "--concurrency", "2"});
  EXPECT_EQ(insecure.exit_code, 0) << insecure.describe();

  // The system's CAs do not know this certificate: refused, said once, and
  // the run ends instead of retrying for ever.
  const auto untrusted = runCommand({EVENTFLOW_BINARY, "produce", "--url", url, "--count", "20", "--concurrency", "2"});
  EXPECT_EQ(untrusted.exit_code, 1) << untrusted.describe();
  EXPECT_NE(untrusted.err.find("certificate verify failed"), std::string::npos) << untrusted.err;

  const auto plain_flags = runCommand({EVENTFLOW_BINARY, "produce", "--url", "http://localhost:1", "--insecure"});
  EXPECT_EQ(plain_flags.exit_code, 2) << plain_flags.describe();
  EXPECT_EQ(t.host().count("SELECT COUNT(*) FROM raw_events"), 220);
}

TEST(Tls, BadTlsFilesAreRefusedByValidateAndServeNamingTheKey) {
  TlsHost t;
  if (::testing::Test::HasFatalFailure()) return;
  const fs::path dir = t.dir();
  std::ofstream(dir / "not-pem.pem") << "this is not a certificate\n";
  makeCertificate(dir, "other", false);
  std::ifstream in(t.host().config());
  const std::string config((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto tls_at = config.find("tls: {");
  ASSERT_NE(tls_at, std::string::npos) << config;
  const auto tls_end = config.find('}', tls_at) + 1;

  struct Case {
    std::string tls;
    std::string expected;  // in the message, after "server.tls"
  };
  const std::vector<Case> cases{
      {"tls: { cert_file: missing.pem, key_file: server.key }",
       ".cert_file '" + (dir / "missing.pem").string() + "' cannot be used: cannot open: No such file or directory"},
      {"tls: { cert_file: not-pem.pem, key_file: server.key }", ".cert_file '" + (dir / "not-pem.pem").string() + "' holds no PEM certificate"},
      {"tls: { cert_file: server.pem, key_file: not-pem.pem }", ".key_file '" + (dir / "not-pem.pem").string() + "' holds no unencrypted PEM private key"},
      {"tls: { cert_file: server.pem, key_file: other.key }", ".key_file '" + (dir / "other.key").string() + "' is not the private key of the certificate"},
      {"tls: { cert_file: server.pem, key_file: server.key, client_ca_file: /dev/zero }", ".client_ca_file '/dev/zero' cannot be used: not a regular file"},
      {"tls: { cert_file: server.pem }", " needs both 'cert_file' and 'key_file'"},
      {"tls: { cert_file: server.pem, key_file: server.key, ca_file: ca.pem }", ""},
  };
  int n = 0;
  for (const auto& c : cases) {
    const std::string file = (dir / ("bad-" + std::to_string(n++) + ".yaml")).string();
    std::ofstream(file) << config.substr(0, tls_at) + c.tls + config.substr(tls_end);
    const std::string expected = c.expected.empty() ? "unknown key 'ca_file' in server.tls" : "server.tls" + c.expected;
    for (const std::string command : {"validate", "serve"}) {
      const auto r = runCommand({EVENTFLOW_BINARY, command, "--config", file});
      EXPECT_EQ(r.exit_code, 1) << command << " " << c.tls << "\n" << r.describe();
      // file:line:col, then the key and what is wrong with its file.
      EXPECT_NE(r.err.find(file + ":1:"), std::string::npos) << command << " " << c.tls << "\n" << r.err;
      EXPECT_NE(r.err.find(expected), std::string::npos) << command << " " << c.tls << "\n" << r.err;
    }
  }
}
