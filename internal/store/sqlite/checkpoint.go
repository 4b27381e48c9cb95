package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// A checkpoint copies the pages of committed transactions from the WAL
// into the database file. SQLite runs it, by default, in the connection
// whose commit took the WAL past wal_autocheckpoint pages, before that
// commit returns (https://www.sqlite.org/wal.html#automatic_checkpoint):
// the ingest's writer, which spent 6-8 % of its time there. The store runs
// it on a connection of its own instead, on the other core: a PASSIVE
// checkpoint "as many frames as possible without waiting for any database
// readers or writers to finish" (https://www.sqlite.org/c3ref/wal_checkpoint_v2.html),
// so the writer goes on appending to the WAL meanwhile, and the WAL starts
// over at the writer's next transaction once all of it was copied
// (https://www.sqlite.org/wal.html#checkpointing). It changes nothing of
// what a commit promises: the commit has synced the WAL (synchronous=FULL),
// and the checkpoint syncs the database before it counts pages as copied.

// checkpointEvery is how often at most the store checkpoints: a page that
// several transactions of one interval changed is copied once.
const checkpointEvery = time.Second

// walBoundPages is every connection's wal_autocheckpoint: the WAL size (in
// pages) past which a committing connection checkpoints itself, which it
// reaches only when the store's checkpoints fall behind (a reader that
// holds an old snapshot keeps them from copying its pages).
const walBoundPages = 32768

// checkpointer checkpoints the database, once a write committed, at most
// every checkpointEvery, on a connection it holds for the store's life (so
// that it never takes one of the readers' pool).
type checkpointer struct {
	conn   *sql.Conn
	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

func startCheckpointer(ctx context.Context, db *sql.DB) (*checkpointer, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("checkpoint connection: %w", err)
	}
	run, cancel := context.WithCancel(context.Background())
	c := &checkpointer{conn: conn, kick: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	go c.run(run)
	return c, nil
}

// committed tells the checkpointer that a write committed; it never waits.
func (c *checkpointer) committed() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run(ctx context.Context) {
	defer close(c.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		}
		// A failed checkpoint (the database busy or closing) leaves the
		// pages to the next one, or to the writer past walBoundPages.
		var busy, pages, copied int64
		_ = c.conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &pages, &copied)
		select {
		case <-ctx.Done():
			return
		case <-time.After(checkpointEvery):
		}
	}
}

// stop stops the checkpointer, waits for it and closes its connection.
func (c *checkpointer) stop() {
	c.cancel()
	<-c.done
	c.conn.Close()
}
