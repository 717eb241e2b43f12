package cli

import (
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Annotations understood by the help renderer.
const (
	// annotationTop places a command under "Common Commands" in the root
	// help; the value is its position ("1", "2", ...).
	annotationTop = "category-top"
	// annotationAliases lists every way to invoke a command, as shown under
	// "Aliases:" ("berth image ls, berth image list, berth images").
	annotationAliases = "aliases"
)

// NewRootCommand builds the berth command tree bound to c.
func NewRootCommand(c *CLI) *cobra.Command {
	var showVersion bool
	root := &cobra.Command{
		Use:               binaryName + " [OPTIONS] COMMAND [ARG...]",
		Short:             "A self-sufficient runtime for containers",
		SilenceUsage:      true,
		SilenceErrors:     true,
		Args:              cobra.ArbitraryArgs,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		RunE: func(cmd *cobra.Command, args []string) error {
			if showVersion {
				fmt.Fprintf(c.Out, "%s version %s, build %s\n", binaryName, clientVersion(), clientGitCommit())
				return nil
			}
			if len(args) == 0 {
				return renderHelp(c.Err, cmd, c.Out.Width(80))
			}
			return fmt.Errorf("%s: unknown command: %s %s\n\nRun '%s --help' for more information",
				binaryName, binaryName, args[0], binaryName)
		},
	}
	root.SetIn(c.In)
	root.SetOut(c.Out)
	root.SetErr(c.Err)

	// Global options are the root's own flags: like docker's, they go
	// before the command name (berth -H HOST images), which leaves their
	// letters free for subcommands (history -H).
	root.TraverseChildren = true
	defaultConfig := c.ConfigDir()
	flags := root.Flags()
	flags.StringVar(&c.opts.configDir, "config", defaultConfig, "Location of client config files")
	flags.BoolVarP(&c.opts.debug, "debug", "D", false, "Enable debug mode")
	flags.VarP(newListValue(&c.opts.hosts), "host", "H", "Daemon socket to connect to")
	flags.StringVarP(&c.opts.logLevel, "log-level", "l", "info", `Set the logging level ("debug", "info", "warn", "error", "fatal")`)
	flags.BoolVar(&c.opts.tls, "tls", false, "Use TLS; implied by --tlsverify")
	flags.StringVar(&c.opts.tlsCACert, "tlscacert", filepath.Join(defaultConfig, "ca.pem"), "Trust certs signed only by this CA")
	flags.StringVar(&c.opts.tlsCert, "tlscert", filepath.Join(defaultConfig, "cert.pem"), "Path to TLS certificate file")
	flags.StringVar(&c.opts.tlsKey, "tlskey", filepath.Join(defaultConfig, "key.pem"), "Path to TLS key file")
	flags.BoolVar(&c.opts.tlsVerify, "tlsverify", false, "Use TLS and verify the remote")
	flags.BoolVarP(&showVersion, "version", "v", false, "Print version information and quit")
	root.PersistentFlags().BoolP("help", "h", false, "Print usage")
	_ = root.PersistentFlags().MarkHidden("help")
	// docker still accepts -h for help but says it is deprecated.
	_ = root.PersistentFlags().MarkShorthandDeprecated("help", "use --help")

	root.SetFlagErrorFunc(flagErrorFunc)
	root.SetHelpFunc(func(cmd *cobra.Command, _ []string) {
		_ = renderHelp(c.Out, cmd, c.Out.Width(80))
	})
	root.SetUsageFunc(func(cmd *cobra.Command) error {
		return renderHelp(c.Err, cmd, c.Err.Width(80))
	})

	addCommands(root, c)
	walk(root, func(cmd *cobra.Command) {
		cmd.DisableFlagsInUseLine = true
		// pflag prints deprecation notices (-h) to the flag set's output;
		// docker's go to stdout.
		cmd.Flags().SetOutput(c.Out)
	})
	// ... except for the root's own: "berth -h" says nothing.
	root.Flags().SetOutput(io.Discard)
	return root
}

// addCommands registers every command. New command groups (container,
// network, volume, build ...) are added here.
func addCommands(root *cobra.Command, c *CLI) {
	root.AddCommand(
		// images
		newImageCommand(c),
		newPullCommand(c),
		newPushCommand(c),
		newImagesCommand(c),
		newHistoryCommand(c),
		newTagCommand(c),
		newRmiCommand(c),
		newSaveCommand(c),
		newLoadCommand(c),
		newImportCommand(c),
		newBuildCommand(c),
		newBuilderCommand(c),
		// containers
		newContainerCommand(c),
		newRunCommand(c),
		newExecCommand(c),
		newPsCommand(c),
		newAttachCommand(c),
		newCommitCommand(c),
		newCpCommand(c),
		newCreateCommand(c),
		newDiffCommand(c),
		newExportCommand(c),
		newKillCommand(c),
		newLogsCommand(c),
		newPauseCommand(c),
		newPortCommand(c),
		newRenameCommand(c),
		newRestartCommand(c),
		newRmCommand(c),
		newStartCommand(c),
		newStatsCommand(c),
		newStopCommand(c),
		newTopCommand(c),
		newUnpauseCommand(c),
		newUpdateCommand(c),
		newWaitCommand(c),
		newEventsCommand(c),
		newNetworkCommand(c),
		newVolumeCommand(c),
		// registries
		newLoginCommand(c),
		newLogoutCommand(c),
		// system
		newSystemCommand(c),
		newVersionCommand(c),
		newInfoCommand(c),
		newInspectCommand(c),
	)
}

// groupCommand returns a management command ("berth image") that only
// holds subcommands and prints its help when called alone.
func groupCommand(c *CLI, name, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   name,
		Short: short,
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return renderHelp(c.Err, cmd, c.Err.Width(80))
		},
	}
	cmd.AddCommand(subs...)
	return cmd
}

func walk(cmd *cobra.Command, fn func(*cobra.Command)) {
	fn(cmd)
	for _, sub := range cmd.Commands() {
		walk(sub, fn)
	}
}

// listValue is a repeatable string flag shown as type "list" (like -H).
type listValue struct{ dst *[]string }

func newListValue(dst *[]string) *listValue { return &listValue{dst: dst} }

func (l *listValue) String() string {
	if l.dst == nil || len(*l.dst) == 0 {
		return ""
	}
	return "[" + strings.Join(*l.dst, " ") + "]"
}
func (l *listValue) Set(s string) error { *l.dst = append(*l.dst, s); return nil }
func (l *listValue) Type() string       { return "list" }

// renderHelp writes a command's help in the docker CLI's layout.
func renderHelp(w io.Writer, cmd *cobra.Command, width int) error {
	var b strings.Builder
	isRoot := !cmd.HasParent()
	b.WriteString("Usage:  ")
	if cmd.HasAvailableSubCommands() {
		b.WriteString(cmd.CommandPath())
		if hasLocalFlags(cmd) {
			b.WriteString(" [OPTIONS]")
		}
		b.WriteString(" COMMAND")
	} else {
		b.WriteString(cmd.UseLine())
	}
	b.WriteString("\n\n")
	desc := cmd.Long
	if desc == "" {
		desc = cmd.Short
	}
	b.WriteString(strings.TrimSpace(desc))
	b.WriteString("\n")

	if aliases := commandAliases(cmd); aliases != "" {
		fmt.Fprintf(&b, "\nAliases:\n  %s\n", aliases)
	}
	if cmd.Example != "" {
		fmt.Fprintf(&b, "\nExamples:\n%s\n", strings.TrimRight(cmd.Example, "\n"))
	}
	if !isRoot && hasLocalFlags(cmd) {
		fmt.Fprintf(&b, "\nOptions:\n%s", flagUsages(cmd, width))
	}

	if cmd.HasAvailableSubCommands() {
		var top, mgmt, other []*cobra.Command
		for _, sub := range cmd.Commands() {
			if !sub.IsAvailableCommand() {
				continue
			}
			switch {
			case !isRoot:
				other = append(other, sub)
			case sub.Annotations[annotationTop] != "":
				top = append(top, sub)
			case sub.HasAvailableSubCommands():
				mgmt = append(mgmt, sub)
			default:
				other = append(other, sub)
			}
		}
		sort.SliceStable(top, func(i, j int) bool {
			a, _ := strconv.Atoi(top[i].Annotations[annotationTop])
			b, _ := strconv.Atoi(top[j].Annotations[annotationTop])
			return a < b
		})
		pad := 11
		for _, sub := range cmd.Commands() {
			if sub.IsAvailableCommand() {
				pad = max(pad, len(sub.Name()))
			}
		}
		section := func(title string, cmds []*cobra.Command) {
			if len(cmds) == 0 {
				return
			}
			fmt.Fprintf(&b, "\n%s:\n", title)
			for _, s := range cmds {
				fmt.Fprintf(&b, "  %-*s %s\n", pad, s.Name(), s.Short)
			}
		}
		section("Common Commands", top)
		section("Management Commands", mgmt)
		section("Commands", other)
	}
	if isRoot {
		fmt.Fprintf(&b, "\nGlobal Options:\n%s", flagUsages(cmd, width))
	}
	if cmd.HasAvailableSubCommands() {
		path := cmd.CommandPath()
		fmt.Fprintf(&b, "\nRun '%s COMMAND --help' for more information on a command.\n", path)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// localFlags are the flags a command defines itself (the root's persistent
// flags count for the root), without hidden ones.
func localFlags(cmd *cobra.Command) *pflag.FlagSet {
	fs := pflag.NewFlagSet(cmd.Name(), pflag.ContinueOnError)
	add := func(f *pflag.Flag) {
		if !f.Hidden && fs.Lookup(f.Name) == nil {
			fs.AddFlag(f)
		}
	}
	cmd.LocalNonPersistentFlags().VisitAll(add)
	cmd.PersistentFlags().VisitAll(add)
	return fs
}

func hasLocalFlags(cmd *cobra.Command) bool {
	return localFlags(cmd).HasFlags()
}

func flagUsages(cmd *cobra.Command, width int) string {
	return localFlags(cmd).FlagUsagesWrapped(width - 1)
}

func commandAliases(cmd *cobra.Command) string {
	if a := cmd.Annotations[annotationAliases]; a != "" {
		return a
	}
	if len(cmd.Aliases) == 0 {
		return ""
	}
	parent := ""
	if cmd.HasParent() {
		parent = cmd.Parent().CommandPath() + " "
	}
	names := []string{parent + cmd.Name()}
	for _, a := range cmd.Aliases {
		names = append(names, parent+a)
	}
	return strings.Join(names, ", ")
}

// aliases sets the "Aliases:" line of cmd to the given invocations, each
// given without the binary name ("image ls", "images").
func aliases(cmd *cobra.Command, invocations ...string) *cobra.Command {
	full := make([]string, len(invocations))
	for i, s := range invocations {
		full[i] = binaryName + " " + s
	}
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[annotationAliases] = strings.Join(full, ", ")
	return cmd
}

// common places cmd under "Common Commands" at position pos.
func common(cmd *cobra.Command, pos int) *cobra.Command {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[annotationTop] = strconv.Itoa(pos)
	return cmd
}
