package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"regexp"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
)

var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

var (
	adjectives = []string{"admiring", "agitated", "amazing", "angry", "awesome", "blissful", "bold", "brave", "busy", "charming",
		"clever", "cool", "dazzling", "determined", "eager", "ecstatic", "elegant", "epic", "festive", "focused", "friendly",
		"frosty", "gallant", "gifted", "goofy", "happy", "hopeful", "hungry", "inspiring", "jolly", "keen", "kind", "laughing",
		"loving", "lucid", "magical", "modest", "musing", "nice", "nifty", "nostalgic", "objective", "optimistic", "peaceful",
		"pensive", "priceless", "quirky", "relaxed", "reverent", "romantic", "serene", "sharp", "silly", "sleepy", "stoic",
		"strange", "sweet", "tender", "thirsty", "trusting", "upbeat", "vibrant", "vigilant", "wizardly", "wonderful", "youthful", "zealous"}
	surnames = []string{"albattani", "allen", "archimedes", "babbage", "bardeen", "bell", "bohr", "brahmagupta", "curie",
		"darwin", "dijkstra", "einstein", "euclid", "euler", "fermat", "feynman", "franklin", "galileo", "gauss", "goldberg",
		"hamilton", "hawking", "heisenberg", "hopper", "hypatia", "johnson", "kepler", "knuth", "lamport", "lovelace",
		"mayer", "mccarthy", "meitner", "newton", "noether", "pascal", "pike", "ritchie", "shannon", "thompson", "torvalds",
		"turing", "wilson", "wozniak", "wright", "yonath"}
)

func pick(list []string) string {
	n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(list))))
	return list[n.Int64()]
}

// randomName returns a Docker-style name such as "focused_turing".
func randomName(retry int) string {
	name := fmt.Sprintf("%s_%s", pick(adjectives), pick(surnames))
	if retry > 0 {
		n, _ := rand.Int(rand.Reader, big.NewInt(10))
		name = fmt.Sprintf("%s%d", name, n.Int64())
	}
	return name
}

// newID returns a random 64-hex-digit ID.
func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Rename gives a container a new name.
func (s *Service) Rename(ctx context.Context, idOrName, newName string) error {
	c, err := s.Get(idOrName)
	if err != nil {
		return err
	}
	if newName == "" {
		return cerrdefs.ErrInvalidArgument.WithMessage("Neither old nor new names may be empty")
	}
	s.mu.Lock()
	name, err := s.reserveNameLocked(newName, c.ID)
	if err != nil {
		s.mu.Unlock()
		if c.Name == "/"+strings.TrimPrefix(newName, "/") {
			return cerrdefs.ErrConflict.WithMessage("Renaming a container with the same name as its current name")
		}
		return err
	}
	c.mu.Lock()
	old := c.Name
	c.Name = name
	err = c.save(s.dir(c.ID))
	if err != nil {
		c.Name = old
	}
	c.mu.Unlock()
	if err != nil {
		delete(s.byName, name)
	} else {
		delete(s.byName, old)
	}
	s.mu.Unlock()
	if err == nil {
		s.emit(c, "rename", map[string]string{"oldName": old})
	}
	return err
}
