#pragma once
// Real PostgreSQL and Redis for tests: scripts/test starts them and exports
// their URLs. Each test gets its own database or stream prefix.

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace eventflow::testing {

inline std::string requiredEnv(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) {
    ADD_FAILURE() << name << " is not set: run the tests through scripts/test, which starts PostgreSQL and Redis";
    return {};
  }
  return v;
}

inline std::string redisUrl() { return requiredEnv("EVENTFLOW_TEST_REDIS_URL"); }

/// A fresh, empty database on the test PostgreSQL; returns its URL.
inline std::string freshDatabase(const std::string& tag) {
  static std::atomic<int> n{0};
  const std::string base = requiredEnv("EVENTFLOW_TEST_POSTGRES_URL");
  if (base.empty()) return {};
  const std::string name = "ef_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(n++);
  PGconn* conn = PQconnectdb(base.c_str());
  EXPECT_EQ(PQstatus(conn), CONNECTION_OK) << PQerrorMessage(conn);
  PGresult* r = PQexec(conn, ("CREATE DATABASE " + name).c_str());
  EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQerrorMessage(conn);
  PQclear(r);
  PQfinish(conn);
  return base.substr(0, base.rfind('/') + 1) + name;
}

/// A role whose password holds every character a hand-made conversion of a
/// URL got wrong ('=', a space, a quote, a backslash), and which must log in
/// with it: pg_hba asks this role for scram-sha-256 (the test cluster trusts
/// everyone else).
inline constexpr const char* kHostileRole = "ef_hostile_password";
inline constexpr const char* kHostilePassword = "p=w d'q\\b";
inline constexpr const char* kHostilePasswordEncoded = "p%3Dw%20d%27q%5Cb";

/// A fresh database owned by kHostileRole; its URL with `password` (already
/// percent-encoded) for that role.
inline std::string hostileRoleDatabase(const std::string& tag, const std::string& password = kHostilePasswordEncoded) {
  const std::string base = requiredEnv("EVENTFLOW_TEST_POSTGRES_URL");
  const std::string data = requiredEnv("EVENTFLOW_TEST_PG_DATA");
  if (base.empty() || data.empty()) return {};
  // Another test binary may do the same at once: the edit is the same line,
  // written whole by a rename.
  const std::string line = std::string("host all ") + kHostileRole + " 127.0.0.1/32 scram-sha-256";
  const std::filesystem::path hba = std::filesystem::path(data) / "pg_hba.conf";
  std::stringstream current;
  current << std::ifstream(hba).rdbuf();
  if (current.str().find(line) == std::string::npos) {
    const std::filesystem::path next = hba.string() + "." + std::to_string(::getpid());
    std::ofstream(next) << line << "\n" << current.str();
    std::filesystem::rename(next, hba);
  }
  const std::string name = "ef_" + tag + "_" + std::to_string(::getpid());
  PGconn* conn = PQconnectdb(base.c_str());
  EXPECT_EQ(PQstatus(conn), CONNECTION_OK) << PQerrorMessage(conn);
  // standard_conforming_strings: a backslash in a literal is itself.
  std::string quoted;
  for (const char* c = kHostilePassword; *c; ++c) quoted += *c == '\'' ? std::string("''") : std::string(1, *c);
  for (const std::string& sql :
       {std::string("DO $$ BEGIN CREATE ROLE ") + kHostileRole + " LOGIN; EXCEPTION WHEN duplicate_object OR "
            "unique_violation THEN NULL; END $$",
        std::string("SET password_encryption = 'scram-sha-256'; ALTER ROLE ") + kHostileRole + " PASSWORD '" + quoted + "'",
        "DROP DATABASE IF EXISTS " + name, "CREATE DATABASE " + name + " OWNER " + kHostileRole,
        std::string("SELECT pg_reload_conf()")}) {
    PGresult* r = PQexec(conn, sql.c_str());
    EXPECT_TRUE(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK)
        << sql << ": " << PQerrorMessage(conn);
    PQclear(r);
  }
  PQfinish(conn);
  // postgresql://eventflow@127.0.0.1:port/db → postgresql://role:password@127.0.0.1:port/name
  const std::size_t at = base.find('@');
  const std::size_t slash = base.rfind('/');
  return std::string("postgresql://") + kHostileRole + ":" + password + base.substr(at, slash - at + 1) + name;
}

/// One integer from a query on `url`.
inline long long pgCount(const std::string& url, const std::string& sql) {
  PGconn* conn = PQconnectdb(url.c_str());
  long long n = -1;
  if (PQstatus(conn) == CONNECTION_OK) {
    PGresult* r = PQexec(conn, sql.c_str());
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0) n = std::atoll(PQgetvalue(r, 0, 0));
    else ADD_FAILURE() << sql << ": " << PQerrorMessage(conn);
    PQclear(r);
  }
  PQfinish(conn);
  return n;
}

/// Every id in `accepted` is done with exactly one processed_events row, and
/// no processed_events row is for an event that is not done.
inline void expectAcceptedDoneOnce(const std::string& pg, const std::vector<std::string>& accepted) {
  std::string ids = "'{";
  for (std::size_t i = 0; i < accepted.size(); ++i) ids += (i ? "," : "") + accepted[i];
  ids += "}'::uuid[]";
  EXPECT_EQ(pgCount(pg, "SELECT COUNT(*) FROM raw_events WHERE state = 'done' AND event_id = ANY(" + ids + ")"),
            static_cast<long long>(accepted.size()));
  EXPECT_EQ(pgCount(pg, "SELECT COUNT(*) FROM processed_events WHERE event_id = ANY(" + ids + ")"),
            static_cast<long long>(accepted.size()));
  EXPECT_EQ(pgCount(pg, "SELECT COUNT(*) FROM processed_events"),
            pgCount(pg, "SELECT COUNT(*) FROM raw_events WHERE state = 'done'"));
}

/// Waits up to `within` until no event in `pg` is unfinished, then checks
/// that every id in `accepted` is done with exactly one processed_events row,
/// and that no processed_events row is for an event that is not done.
inline void expectEveryIdDoneOnce(const std::string& pg, const std::vector<std::string>& accepted,
                                  std::chrono::seconds within) {
  ASSERT_FALSE(accepted.empty());
  const auto deadline = std::chrono::steady_clock::now() + within;
  long long unfinished = -1;
  while (std::chrono::steady_clock::now() < deadline) {
    unfinished = pgCount(pg, "SELECT COUNT(*) FROM raw_events WHERE state NOT IN ('done', 'dead')");
    if (unfinished == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  ASSERT_EQ(unfinished, 0) << "events still not terminal";
  expectAcceptedDoneOnce(pg, accepted);
}

}  // namespace eventflow::testing
