// Command ferretdb-embedded runs FerretDB v1 with its SQLite backend as a
// child process of the platform, for machines where no MongoDB is available.
//
// It prints one line "READY <mongodb-uri>" on stdout once it accepts
// connections. Clients reach FerretDB through the wire guard (wireguard.go),
// and every collection gets an index FerretDB's _id look-ups can use
// (idindex.go). It stops when it receives SIGINT or SIGTERM, and also when its
// standard input reaches end-of-file: the parent holds the other end of that
// pipe, so when the parent exits for any reason (even SIGKILL) the engine
// stops too instead of lingering with the data files open.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "TCP address to listen on; port 0 picks a free port")
	dir := flag.String("dir", "data/ferretdb", "directory that holds the SQLite files")
	watchStdin := flag.Bool("watch-stdin", true, "stop when standard input is closed (the parent exited)")
	logLevel := flag.String("log-level", "error", "debug, info, warn or error")
	flag.Parse()

	if err := run(*listen, *dir, *watchStdin, *logLevel); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb-embedded:", err)
		os.Exit(1)
	}
}

func run(listen, dir string, watchStdin bool, logLevel string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return fmt.Errorf("cannot create data directory: %w", err)
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("bad -log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	// Every way of stopping says why on stderr, whatever the log level: when the
	// engine disappears under a running platform or test run, its parent's log
	// tells a signal from a closed pipe from a crash (which prints its own trace).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	stopFor := func(reason string) {
		once.Do(func() {
			fmt.Fprintln(os.Stderr, "ferretdb-embedded: stopping:", reason)
			cancel()
		})
	}
	stop := func() { stopFor("the engine or its wire guard ended") }
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-signals:
			stopFor("received " + s.String())
		case <-ctx.Done():
		}
	}()

	if watchStdin {
		go func() {
			// Any read result (EOF or error) means the parent is gone.
			_, err := io.Copy(io.Discard, os.Stdin)
			if err != nil {
				stopFor("standard input failed (" + err.Error() + "); the parent is gone")
			} else {
				stopFor("standard input closed; the parent is gone")
			}
		}()
	}

	// The engine itself listens on a private Unix socket; clients reach it through the wire guard.
	socketDir, err := os.MkdirTemp("", "ferretdb-embedded-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(socketDir)
	inner := filepath.Join(socketDir, "engine.sock")

	// FerretDB wants a file: URI of a directory, ending in a slash. Its defaults
	// stay: WAL, busy_timeout(10000), synchronous FULL (an acknowledged
	// submission survives a power failure too).
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{Unix: inner},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
	})
	if err != nil {
		return err
	}

	// Index the collections already there before anyone connects.
	if n, err := indexAllCollections(ctx, abs); err != nil {
		return fmt.Errorf("cannot add _id path indexes: %w", err)
	} else if n > 0 {
		logger.Info("added _id path indexes", "count", n)
	}

	done := make(chan error, 2)
	go func() { done <- f.Run(ctx) }()

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	if err := waitForSocket(ctx, inner); err != nil {
		return err
	}
	dial := func() (net.Conn, error) { return net.Dial("unix", inner) }
	go func() { done <- serveGuard(ln, dial, logger) }()
	go watchNewCollections(ctx, abs, time.Second, logger)

	fmt.Printf("READY mongodb://%s/\n", ln.Addr().String())

	err = <-done
	stop()
	return err
}

// waitForSocket waits until FerretDB accepts connections on its Unix socket.
func waitForSocket(ctx context.Context, path string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := net.Dial("unix", path)
		if err == nil {
			return conn.Close()
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the engine did not open %s: %w", path, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
