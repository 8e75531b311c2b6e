#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <sys/wait.h>
#include <unistd.h>

#include "brandhooks/crypto.hpp"
#include "brandhooks/errors.hpp"

using namespace brandhooks;

TEST(Crypto, KeyIs64LowercaseHexAndUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string key = generate_key();
    ASSERT_TRUE(std::regex_match(key, std::regex("[0-9a-f]{64}"))) << key;
    ASSERT_TRUE(seen.insert(key).second) << "duplicate key";
  }
}

TEST(Crypto, UuidV4HasVersionAndVariant) {
  std::regex v4("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  for (int i = 0; i < 1000; ++i) {
    std::string id = uuid_v4();
    ASSERT_TRUE(std::regex_match(id, v4)) << id;
  }
}

TEST(Crypto, HexRoundTrip) {
  std::string bytes("\x00\x01\xfe\xff", 4);
  EXPECT_EQ(to_hex(bytes), "0001feff");
  EXPECT_EQ(from_hex("0001FEff"), bytes);
  EXPECT_THROW(from_hex("abc"), ValidationError);
  EXPECT_THROW(from_hex("zz"), ValidationError);
}

TEST(Crypto, Sha256KnownVector) {
  EXPECT_EQ(to_hex(sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Crypto, UuidV7IsTimeOrdered) {
  std::regex v7("[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  std::string previous = uuid_v7();
  for (int i = 0; i < 200; ++i) {
    std::string id = uuid_v7();
    ASSERT_TRUE(std::regex_match(id, v7)) << id;
    ASSERT_GE(id.substr(0, 13), previous.substr(0, 13));  // the millisecond prefix never goes back
    previous = id;
  }
}

TEST(Crypto, IdsStayDistinctAcrossRefillsAndForks) {
  std::set<std::string> seen;
  for (int i = 0; i < 2000; ++i) {  // several refills of the random pool
    ASSERT_TRUE(seen.insert(uuid_v7()).second) << "duplicate id";
  }
  // A forked child must not hand out what the parent will: both start from the same memory.
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::string id = uuid_v4();
    ssize_t written = ::write(pipe_fds[1], id.data(), id.size());
    ::_exit(written == static_cast<ssize_t>(id.size()) ? 0 : 1);
  }
  std::string parent_id = uuid_v4();
  char buffer[36];
  ASSERT_EQ(::read(pipe_fds[0], buffer, sizeof(buffer)), 36);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  EXPECT_NE(std::string(buffer, 36), parent_id);
}
