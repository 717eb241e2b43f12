package cli

import (
	"github.com/spf13/cobra"
)

// newImageCommand is "berth image": the image management group. Most of its
// subcommands also exist at the top level (berth pull, berth images ...);
// each constructor is called once per place so that both are full commands.
func newImageCommand(c *CLI) *cobra.Command {
	return groupCommand(c, "image", "Manage images",
		newBuildCommand(c),
		newHistoryCommand(c),
		newImportCommand(c),
		newImageInspectCommand(c),
		newLoadCommand(c),
		newImageListCommand(c),
		newImagePruneCommand(c),
		newPullCommand(c),
		newPushCommand(c),
		newImageRemoveCommand(c),
		newSaveCommand(c),
		newTagCommand(c),
	)
}
