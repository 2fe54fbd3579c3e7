package portrait.bi;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.apache.hadoop.hive.conf.HiveConf;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.TableIdentifier;
import org.apache.spark.sql.catalyst.analysis.ResolvedNamespace;
import org.apache.spark.sql.catalyst.analysis.ResolvedPersistentView;
import org.apache.spark.sql.catalyst.analysis.ResolvedTable;
import org.apache.spark.sql.catalyst.expressions.CallMethodViaReflection;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.RuntimeReplaceable;
import org.apache.spark.sql.catalyst.expressions.ScalaUDF;
import org.apache.spark.sql.catalyst.expressions.UserDefinedExpression;
import org.apache.spark.sql.catalyst.plans.logical.CTERelationRef;
import org.apache.spark.sql.catalyst.plans.logical.Command;
import org.apache.spark.sql.catalyst.plans.logical.LocalRelation;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.catalyst.plans.logical.OneRowRelation;
import org.apache.spark.sql.catalyst.plans.logical.Range;
import org.apache.spark.sql.catalyst.plans.logical.View;
import org.apache.spark.sql.connector.catalog.Identifier;
import org.apache.spark.sql.delta.DeltaLogFileIndex;
import org.apache.spark.sql.delta.files.TahoeLogFileIndex;
import org.apache.spark.sql.execution.LogicalRDD;
import org.apache.spark.sql.execution.columnar.InMemoryRelation;
import org.apache.spark.sql.execution.command.DescribeColumnCommand;
import org.apache.spark.sql.execution.command.DescribeTableCommand;
import org.apache.spark.sql.execution.command.SetCommand;
import org.apache.spark.sql.execution.command.ShowColumnsCommand;
import org.apache.spark.sql.execution.command.ShowTablesCommand;
import org.apache.spark.sql.execution.command.ShowViewsCommand;
import org.apache.spark.sql.execution.datasources.FileIndex;
import org.apache.spark.sql.execution.datasources.HadoopFsRelation;
import org.apache.spark.sql.execution.datasources.LogicalRelation;
import org.apache.spark.sql.internal.SQLConf;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.Option;
import scala.Tuple2;
import scala.jdk.javaapi.CollectionConverters;

/**
 * What a client of {@code portrait serve-bi} may do: read the served BI tables, nothing else.
 *
 * <p>Checked on every analysed plan of every session ({@link BiGuardExtension}) once {@link #arm} has named the
 * served tables; before that the server registers its tables unchecked. A refused plan raises
 * {@link SecurityException}, which the Thrift Server returns to the client as the statement's error. Refused:
 * <ul>
 *   <li>every command except listing and describing (SHOW, DESCRIBE of served tables, USE, SET of a few keys):
 *       DDL, DML, INSERT OVERWRITE DIRECTORY, CACHE, ADD JAR, EXPLAIN, RESET, …;</li>
 *   <li>reading anything but a served table at its current version: path SQL ({@code delta.`/path`},
 *       {@code text.`/file`}), time travel, the change feed, tables of other catalogs;</li>
 *   <li>reflection ({@code java_method}, {@code reflect}, {@code try_reflect}), user-defined functions and
 *       script transforms ({@code TRANSFORM … USING 'command'});</li>
 *   <li>a session whose settings differ from the server's (outside {@link #CLIENT_SETTABLE}): a client can
 *       pass settings when it opens a session, and the Thrift Server applies them without a plan to check.</li>
 * </ul>
 */
public final class BiGuard {
  /** Settings a client may change: what BI tools and the Hive JDBC driver set, none of them security-relevant. */
  static final Set<String> CLIENT_SETTABLE = Set.of(
      "spark.sql.session.timeZone",
      "hive.server2.thrift.resultset.default.fetch.size");
  /**
   * Settings Spark itself gives a client session: the Thrift Server when it opens one (Java 8 date types) and
   * when it formats the first result (binary columns as UTF-8 text).
   */
  static final Set<String> SET_BY_SERVER = Set.of(
      "spark.sql.datetime.java8API.enabled", "spark.sql.binaryOutputStyle");

  private static final String LOGICAL = "org.apache.spark.sql.catalyst.plans.logical.";
  private static final String COMMAND = "org.apache.spark.sql.execution.command.";
  /** Commands that only list names or show the session's state. */
  private static final Set<String> LISTING = Set.of(
      LOGICAL + "SetCatalogAndNamespace", COMMAND + "SetNamespaceCommand",
      LOGICAL + "ShowTables", COMMAND + "ShowTablesCommand", LOGICAL + "ShowViews", COMMAND + "ShowViewsCommand",
      LOGICAL + "ShowNamespaces", COMMAND + "ShowNamespacesCommand", LOGICAL + "ShowCatalogs",
      LOGICAL + "ShowCurrentNamespace", COMMAND + "ShowCurrentNamespaceCommand",
      LOGICAL + "ShowFunctions", COMMAND + "ShowFunctionsCommand",
      LOGICAL + "DescribeFunction", COMMAND + "DescribeFunctionCommand",
      LOGICAL + "DescribeNamespace", COMMAND + "DescribeDatabaseCommand");
  /** Commands that show one table's columns: allowed for served tables only. */
  private static final Set<String> DESCRIBING = Set.of(
      LOGICAL + "DescribeRelation", COMMAND + "DescribeTableCommand", LOGICAL + "DescribeColumn",
      COMMAND + "DescribeColumnCommand", LOGICAL + "ShowColumns", COMMAND + "ShowColumnsCommand",
      "org.apache.spark.sql.delta.commands.ShowDeltaTableColumnsCommand");

  private static final Logger LOG = LoggerFactory.getLogger(BiGuard.class);
  private static volatile BiGuard armed;

  private final Set<String> servedTables;
  private final Set<String> trustedViews;
  private final Set<String> viewSources;
  private final Set<String> listableDatabases;
  private final Map<String, String> serverSettings;
  private final Pattern secretKeys;

  private BiGuard(Set<String> servedTables, Set<String> trustedViews, Set<String> viewSources,
                  Map<String, String> serverSettings, Pattern secretKeys) {
    this.servedTables = servedTables;
    this.trustedViews = trustedViews;
    this.viewSources = viewSources;
    Set<String> databases = new TreeSet<>(Set.of("default"));  // empty; BI tools list it when they connect
    for (String name : servedTables) {
      databases.add(name.substring(0, name.lastIndexOf('.')));
    }
    for (String name : trustedViews) {
      databases.add(name.substring(0, name.lastIndexOf('.')));
    }
    this.listableDatabases = Set.copyOf(databases);
    this.serverSettings = serverSettings;
    this.secretKeys = secretKeys;
  }

  /**
   * Start refusing. The arguments are comma-separated {@code database.name}s: the served tables, the trusted
   * views (the server's own definitions, which are not looked into: portrait_history shows user_portrait
   * without its id columns) and the tables those views read, which clients may not read themselves. The
   * settings of {@code server} (the session the client sessions derive from) and the Hive settings given as
   * Java system properties, which Hive copies into every client session, become the only settings a session
   * may run with.
   */
  public static synchronized void arm(SparkSession server, String servedTables, String trustedViews,
                                      String viewSources) {
    org.apache.spark.sql.classic.SparkSession classic = (org.apache.spark.sql.classic.SparkSession) server;
    // Building the analyser lets extensions put their settings into the session first (Delta's turn on the
    // Parquet field ids), as they do in every client session before its first plan is checked.
    classic.sessionState().analyzer();
    Map<String, String> settings = new HashMap<>(
        CollectionConverters.asJava(classic.sessionState().conf().getAllConfs()));
    settings.putAll(HiveConf.getConfSystemProperties());
    String redaction = classic.sparkContext().getConf().get(
        "spark.redaction.regex", "(?i)secret|password|token|access[.]?key");
    armed = new BiGuard(names(servedTables), names(trustedViews), names(viewSources), Map.copyOf(settings),
        Pattern.compile(redaction + "|(?i)secret|password|token|credential"));
  }

  static void check(SparkSession session, LogicalPlan plan) {
    BiGuard guard = armed;
    if (guard == null) {
      return;
    }
    org.apache.spark.sql.classic.SparkSession classic = (org.apache.spark.sql.classic.SparkSession) session;
    try {
      guard.checkSettings(classic.sessionState().conf());
      if (plan instanceof Command) {
        guard.checkCommand(classic, plan);
      } else {
        guard.checkQuery(plan);
      }
    } catch (SecurityException refused) {
      // The server's log keeps what was refused (the client sees the message too); the plan only when asked.
      LOG.warn(refused.getMessage());
      if (LOG.isDebugEnabled()) {
        LOG.debug("refused plan:\n" + plan.treeString());
      }
      throw refused;
    }
  }

  private static Set<String> names(String commaSeparated) {
    return Arrays.stream(commaSeparated.split(",")).map(String::trim).filter(s -> !s.isEmpty())
        .map(s -> s.toLowerCase(Locale.ROOT)).collect(Collectors.toUnmodifiableSet());
  }

  private static void refuse(String what) {
    throw new SecurityException("portrait serve-bi refuses this statement: " + what
        + ". The endpoint serves read-only queries on the BI tables.");
  }

  private void checkSettings(SQLConf conf) {
    Map<String, String> session = CollectionConverters.asJava(conf.getAllConfs());
    Set<String> changed = new TreeSet<>();
    for (Map.Entry<String, String> entry : session.entrySet()) {
      String key = entry.getKey();
      if (!CLIENT_SETTABLE.contains(key) && !SET_BY_SERVER.contains(key)
          && !Objects.equals(serverSettings.get(key), entry.getValue())) {
        changed.add(key);
      }
    }
    for (String key : serverSettings.keySet()) {
      if (!CLIENT_SETTABLE.contains(key) && !session.containsKey(key)) {
        changed.add(key);
      }
    }
    if (!changed.isEmpty()) {
      refuse("the session changes server settings (" + String.join(", ", changed) + ")");
    }
  }

  private void checkCommand(org.apache.spark.sql.classic.SparkSession session, LogicalPlan plan) {
    String name = plan.getClass().getName();
    if (plan instanceof SetCommand) {
      checkSet((SetCommand) plan);
    } else if (DESCRIBING.contains(name)) {
      checkDescribed(session, plan);
    } else if (!LISTING.contains(name)) {
      refuse(plan.nodeName() + " is not a read-only query");
    } else if (name.contains("ShowTables") || name.contains("ShowViews")) {
      checkListedDatabase(session, plan);
    }
  }

  /** Table names are listed for the served databases only (the history view's source lives in another). */
  private void checkListedDatabase(org.apache.spark.sql.classic.SparkSession session, LogicalPlan plan) {
    String database = session.sessionState().catalog().getCurrentDatabase();
    if (plan instanceof ShowTablesCommand && ((ShowTablesCommand) plan).databaseName().isDefined()) {
      database = ((ShowTablesCommand) plan).databaseName().get();
    } else if (plan instanceof ShowViewsCommand) {
      database = ((ShowViewsCommand) plan).databaseName();
    }
    for (LogicalPlan child : CollectionConverters.asJava(plan.children())) {
      if (child instanceof ResolvedNamespace) {
        database = String.join(".", CollectionConverters.asJava(((ResolvedNamespace) child).namespace()));
      }
    }
    if (!listableDatabases.contains(database.toLowerCase(Locale.ROOT))) {
      refuse("listing the tables of " + database);
    }
  }

  private void checkSet(SetCommand set) {
    Option<Tuple2<String, Option<String>>> keyValue = set.kv();
    if (keyValue.isEmpty()) {
      return;  // SET alone lists the settings; Spark redacts secret-looking values itself
    }
    String key = keyValue.get()._1();
    if (keyValue.get()._2().isEmpty()) {
      if (secretKeys.matcher(key).find()) {
        refuse("reading the setting " + key);
      }
    } else if (!CLIENT_SETTABLE.contains(key)) {
      refuse("SET " + key + " (a client may set only " + String.join(", ", CLIENT_SETTABLE) + ")");
    }
  }

  /** DESCRIBE and SHOW COLUMNS name their table as a resolved child (v2) or a field (v1 commands). */
  private void checkDescribed(org.apache.spark.sql.classic.SparkSession session, LogicalPlan plan) {
    String current = session.sessionState().catalog().getCurrentDatabase();
    if (plan instanceof DescribeTableCommand) {
      requireServed(qualified(((DescribeTableCommand) plan).table(), current), true);
    } else if (plan instanceof DescribeColumnCommand) {
      requireServed(qualified(((DescribeColumnCommand) plan).table(), current), true);
    } else if (plan instanceof ShowColumnsCommand) {
      ShowColumnsCommand show = (ShowColumnsCommand) plan;
      String database = show.databaseName().isDefined() ? show.databaseName().get()
          : show.tableName().database().getOrElse(() -> current);
      requireServed(database + "." + show.tableName().table(), true);
    }
    for (LogicalPlan child : CollectionConverters.asJava(plan.children())) {
      if (child instanceof ResolvedTable) {
        requireServed(qualified(((ResolvedTable) child).identifier()), false);
      } else if (child instanceof ResolvedPersistentView) {
        requireServed(qualified(((ResolvedPersistentView) child).identifier()), true);
      } else if (!(child instanceof ResolvedNamespace)) {
        refuse("describing " + child.nodeName());
      }
    }
  }

  private void requireServed(String name, boolean viewAllowed) {
    String key = name.toLowerCase(Locale.ROOT);
    if (!servedTables.contains(key) && !(viewAllowed && trustedViews.contains(key))) {
      refuse(name + " is not a served table");
    }
  }

  private static String qualified(TableIdentifier table, String currentDatabase) {
    return table.database().getOrElse(() -> currentDatabase) + "." + table.table();
  }

  private static String qualified(Identifier identifier) {
    return String.join(".", identifier.namespace()) + "." + identifier.name();
  }

  private void checkQuery(LogicalPlan plan) {
    if (plan instanceof View) {
      View view = (View) plan;
      String name = qualified(view.desc().identifier(), "").toLowerCase(Locale.ROOT);
      if (!view.isTempView() && trustedViews.contains(name)) {
        return;  // the server's own definition, which reads a table clients may not read themselves
      }
    }
    if (plan instanceof Command || plan.getClass().getName().matches(".*(ScriptTransformation|InsertInto).*")) {
      refuse(plan.nodeName() + " inside a query");
    }
    if (plan.children().isEmpty()) {
      checkLeaf(plan);
    }
    for (Expression expression : CollectionConverters.asJava(plan.expressions())) {
      checkExpression(expression);
    }
    for (LogicalPlan child : CollectionConverters.asJava(plan.children())) {
      checkQuery(child);
    }
    for (LogicalPlan subquery : CollectionConverters.asJava(plan.subqueries())) {
      checkQuery(subquery);
    }
  }

  private void checkLeaf(LogicalPlan leaf) {
    if (leaf instanceof LogicalRelation) {
      checkRelation((LogicalRelation) leaf);
    } else if (!(leaf instanceof LocalRelation || leaf instanceof OneRowRelation || leaf instanceof Range
        || leaf instanceof CTERelationRef || leaf instanceof LogicalRDD || leaf instanceof InMemoryRelation)) {
      // LogicalRDD and InMemoryRelation only come from Spark and Delta code (a table's cached log state):
      // SQL cannot make them without CACHE, which is refused.
      refuse("reading " + leaf.nodeName() + ", which is not a served table");
    }
  }

  private void checkRelation(LogicalRelation relation) {
    FileIndex files = relation.relation() instanceof HadoopFsRelation
        ? ((HadoopFsRelation) relation.relation()).location() : null;
    if (files instanceof DeltaLogFileIndex) {
      return;  // Delta replaying a table's _delta_log to find its files; SQL cannot name such an index
    }
    Option<org.apache.spark.sql.catalyst.catalog.CatalogTable> table = relation.catalogTable();
    if (files instanceof TahoeLogFileIndex && table.isDefined()) {
      String name = qualified(table.get().identifier(), "");
      if (!(viewSources.contains(name.toLowerCase(Locale.ROOT)) && checkingViewBody())) {
        requireServed(name, false);
      }
      if (((TahoeLogFileIndex) files).isTimeTravelQuery()) {
        refuse("time travel to an earlier version of " + name);
      }
      return;
    }
    refuse("reading " + (table.isDefined() ? table.get().identifier().unquotedString() : "files by path")
        + " (only the served BI tables, at their current version, can be read)");
  }

  /**
   * Spark checks a view's resolved body on its own before the query around it (ViewResolution.resolve), with
   * nothing in the plan naming the view. A view source is tolerated there only: the check of the whole query
   * then accepts it inside a trusted view and refuses it anywhere else.
   */
  private static boolean checkingViewBody() {
    return StackWalker.getInstance().walk(frames -> frames.anyMatch(
        frame -> frame.getClassName().startsWith("org.apache.spark.sql.catalyst.analysis.ViewResolution")));
  }

  private void checkExpression(Expression expression) {
    if (expression instanceof CallMethodViaReflection) {
      refuse("calling Java methods (java_method, reflect, try_reflect)");
    }
    // ScalaUDF only comes from JVM code (Delta's own plans use it); SQL can only reach the others, through a
    // function registered in the metastore (Hive UDFs such as GenericUDFReflect) or by a program.
    if (expression instanceof UserDefinedExpression && !(expression instanceof ScalaUDF)) {
      refuse("the user-defined function " + expression.prettyName());
    }
    if (expression instanceof RuntimeReplaceable) {
      checkExpression(((RuntimeReplaceable) expression).replacement());
    }
    for (Expression child : CollectionConverters.asJava(expression.children())) {
      checkExpression(child);
    }
  }
}
