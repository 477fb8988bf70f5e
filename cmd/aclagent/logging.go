package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/slxsh/slxsh/internal/agent"
	"github.com/slxsh/slxsh/internal/nflog"
	"github.com/slxsh/slxsh/internal/nft"
)

// startEventLog binds the NFLOG group of log entries in the agent's
// namespace and records its events until ctx ends. Without it (another
// process holds the group, say) the agent still enforces everything;
// show logging then stays empty, which is logged as an error.
func startEventLog(ctx context.Context, group uint16, events *agent.EventLog, log *slog.Logger) {
	r, err := nflog.Listen(nflog.Config{Group: group})
	if err != nil {
		log.Error("log entries are not read", "nflog_group", group, "err", err)
		events.Unavailable(err.Error())
		return
	}
	go func() {
		<-ctx.Done()
		r.Close()
	}()
	go func() {
		for {
			ev, err := r.Read()
			switch {
			case err == nil:
				events.Record(ev)
			case errors.Is(err, nflog.ErrLost):
				events.Lost()
				log.Warn("log events lost (socket buffer full)", "nflog_group", group)
			case errors.Is(err, net.ErrClosed) || ctx.Err() != nil:
				return
			default:
				log.Error("reading log events", "nflog_group", group, "err", err)
				time.Sleep(100 * time.Millisecond) // do not spin on a broken socket
			}
		}
	}()
}

// watchElements has the applier record, until ctx ends, the set elements
// others change (a flushed limit set is counted again at the next drift
// check: nft/watch.go), listening again after a failure: a second later,
// then twice as long each time up to a minute.
func watchElements(ctx context.Context, kernel *nft.Applier, log *slog.Logger) {
	wait := time.Second
	for {
		start := time.Now()
		err := kernel.WatchElements(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			wait = time.Second // it had worked for a while
		}
		log.Error("set element changes of others are not watched; limit sets are checked against conntrack only", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Minute)
	}
}
