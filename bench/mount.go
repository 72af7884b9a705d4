package bench

import (
	"context"
	"errors"
	"io"
)

// mounted is one running faultfs mount used as a benchmark target.
type mounted struct {
	target string
	dir    string
	stop   func() error
	fired  func() (int, error)
}

func startMount(ctx context.Context, target, root string, stderr io.Writer) (*mounted, error) {
	return nil, errors.New("faultfs not available yet")
}
