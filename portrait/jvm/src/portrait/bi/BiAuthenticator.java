package portrait.bi;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import javax.security.sasl.AuthenticationException;
import org.apache.hive.service.auth.PasswdAuthenticationProvider;

/**
 * The user name and password check of {@code portrait serve-bi}: HiveServer2's CUSTOM authentication
 * ({@code hive.server2.custom.authentication.class}).
 *
 * <p>HiveServer2 makes a new instance for every connection, so the credentials live in static fields that
 * {@link #configure} sets once, through Py4J, before the server starts listening: they never pass through a
 * Spark or Hive setting, which a client could read with {@code SET}. Only SHA-256 digests are held, and both
 * the name and the password are compared as digests with {@link MessageDigest#isEqual}, whose time does not
 * depend on where the bytes differ. Until configured, every connection is refused.
 */
public final class BiAuthenticator implements PasswdAuthenticationProvider {
  private static volatile byte[] userDigest;
  private static volatile byte[] passwordDigest;

  /** Accept exactly {@code user} with the password whose SHA-256 is {@code passwordSha256Hex}. */
  public static synchronized void configure(String user, String passwordSha256Hex) {
    byte[] password = HexFormat.of().parseHex(passwordSha256Hex.trim());
    if (user == null || user.isEmpty() || password.length != 32) {
      throw new IllegalArgumentException("a user name and a 64-digit hex SHA-256 of the password are required");
    }
    userDigest = sha256(user);
    passwordDigest = password;
  }

  @Override
  public void Authenticate(String user, String password) throws AuthenticationException {
    byte[] expectedUser = userDigest;
    byte[] expectedPassword = passwordDigest;
    if (expectedUser == null || expectedPassword == null) {
      throw new AuthenticationException("serve-bi has no credentials configured");
    }
    // Both comparisons always run, so the time taken does not tell whether the name was right.
    boolean userMatches = MessageDigest.isEqual(expectedUser, sha256(user == null ? "" : user));
    boolean passwordMatches = MessageDigest.isEqual(expectedPassword, sha256(password == null ? "" : password));
    if (!(userMatches & passwordMatches)) {
      throw new AuthenticationException("wrong user name or password");
    }
  }

  static byte[] sha256(String text) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every Java runtime has SHA-256", e);
    }
  }
}
