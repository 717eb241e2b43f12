package remote

import (
	"strings"

	"github.com/coreos/go-systemd/v22/journal"

	"github.com/berth/berth/container/logger"
)

type journaldSender struct {
	vars map[string]string
}

// dialJournald sends to the host's journal with dockerd's fields
// (CONTAINER_ID, CONTAINER_NAME, CONTAINER_TAG, SYSLOG_IDENTIFIER, ...).
func dialJournald(r *logger.Remote) (Sender, error) {
	if !journal.Enabled() {
		return nil, errJournal
	}
	vars := map[string]string{
		"CONTAINER_ID":      shortID(r.ContainerID),
		"CONTAINER_ID_FULL": r.ContainerID,
		"CONTAINER_NAME":    strings.TrimPrefix(r.ContainerName, "/"),
		"CONTAINER_TAG":     r.Tag,
		"IMAGE_NAME":        r.ImageName,
		"SYSLOG_IDENTIFIER": r.Tag,
	}
	for k, v := range r.Extra {
		vars[journalKey(k)] = v
	}
	return &journaldSender{vars: vars}, nil
}

type journalError struct{}

func (journalError) Error() string { return "journald is not enabled on this host" }

var errJournal = journalError{}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// journalKey makes a field name journald takes: upper case letters,
// digits and underscores, not starting with an underscore.
func journalKey(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z':
			b.WriteRune(r - 'a' + 'A')
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0:
			b.WriteRune('_')
		}
	}
	return b.String()
}

func (s *journaldSender) Send(e logger.Entry) error {
	prio := journal.PriInfo
	if e.Stream == "stderr" {
		prio = journal.PriErr
	}
	return journal.Send(line(e), prio, s.vars)
}

func (s *journaldSender) Close() error { return nil }
