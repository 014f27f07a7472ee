package main

// The wire guard sits between the platform's MongoDB driver and FerretDB.
//
// Why it exists: FerretDB v1 answers every OP_MSG, even one whose moreToCome
// flag says the client expects no answer (MongoDB sends none: that is what an
// unacknowledged write, writeConcern {w: 0}, means). The Node.js driver does
// not match replies to requests by responseTo; it reads the next message on
// the socket. So after one w:0 write, every later command on that pooled
// connection reads the reply of the command before it: a find gets an
// insert's {n: 1} ("BSON element cursor is missing"), a look-up of one
// collection gets another's documents, a getMore names another query's
// cursor. connect-mongo's session clean-up sends exactly such a write every
// ten minutes; that is how the platform came to answer wrongly until it was
// restarted.
//
// The guard makes the embedded engine behave like MongoDB here: it drops the
// reply to a request sent with moreToCome. As a tripwire it also checks that
// every reply answers the oldest request still open on its connection; if one
// ever does not, it closes that connection, so the driver sees a network
// error and discards it instead of handing a wrong answer to the platform.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
)

const (
	headerLen       = 16
	opMsg           = 2013
	flagMoreToCome  = 1 << 1
	maxMessageBytes = 48 << 20 // MongoDB's maxMessageSizeBytes
)

type wireHeader struct {
	length     int32
	requestID  int32
	responseTo int32
	opCode     int32
}

// readMessage reads one whole wire message: its parsed header and all its bytes.
func readMessage(r *bufio.Reader) (wireHeader, []byte, error) {
	var h wireHeader
	head := make([]byte, headerLen)
	if _, err := io.ReadFull(r, head); err != nil {
		return h, nil, err
	}
	h.length = int32(binary.LittleEndian.Uint32(head[0:4]))
	h.requestID = int32(binary.LittleEndian.Uint32(head[4:8]))
	h.responseTo = int32(binary.LittleEndian.Uint32(head[8:12]))
	h.opCode = int32(binary.LittleEndian.Uint32(head[12:16]))
	if h.length < headerLen || h.length > maxMessageBytes {
		return h, nil, fmt.Errorf("message length %d out of range", h.length)
	}
	msg := make([]byte, h.length)
	copy(msg, head)
	if _, err := io.ReadFull(r, msg[headerLen:]); err != nil {
		return h, nil, err
	}
	return h, msg, nil
}

// expectsNoReply tells whether the client sent an OP_MSG with moreToCome set.
func expectsNoReply(h wireHeader, msg []byte) bool {
	return h.opCode == opMsg && len(msg) >= headerLen+4 &&
		binary.LittleEndian.Uint32(msg[headerLen:headerLen+4])&flagMoreToCome != 0
}

// pending is one connection's requests in the order they were sent.
type pending struct {
	mu    sync.Mutex
	queue []request
}

type request struct {
	id      int32
	noReply bool
}

func (p *pending) push(r request) {
	p.mu.Lock()
	p.queue = append(p.queue, r)
	p.mu.Unlock()
}

// answer takes the oldest open request for a reply; forward is false for a
// reply the client does not expect, err is set when the reply answers
// another request than the oldest one.
func (p *pending) answer(responseTo int32) (forward bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) == 0 {
		return false, fmt.Errorf("reply to request %d when none is open", responseTo)
	}
	oldest := p.queue[0]
	p.queue = p.queue[1:]
	if oldest.id != responseTo {
		return false, fmt.Errorf("reply to request %d while request %d is the oldest open", responseTo, oldest.id)
	}
	return !oldest.noReply, nil
}

// serveGuard accepts clients on ln and connects each to the engine's inner address.
func serveGuard(ln net.Listener, dial func() (net.Conn, error), logger *slog.Logger) error {
	for {
		client, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go guardConnection(client, dial, logger)
	}
}

func guardConnection(client net.Conn, dial func() (net.Conn, error), logger *slog.Logger) {
	defer client.Close()
	engine, err := dial()
	if err != nil {
		logger.Error("wire guard: cannot reach the engine", "error", err)
		return
	}
	defer engine.Close()

	var open pending
	done := make(chan struct{}, 2)

	// Client to engine: note each request, then pass it on unchanged.
	go func() {
		defer func() { done <- struct{}{} }()
		r := bufio.NewReaderSize(client, 64<<10)
		for {
			h, msg, err := readMessage(r)
			if err != nil {
				return
			}
			open.push(request{id: h.requestID, noReply: expectsNoReply(h, msg)})
			if _, err := engine.Write(msg); err != nil {
				return
			}
		}
	}()

	// Engine to client: pass on each reply the client waits for, in order.
	go func() {
		defer func() { done <- struct{}{} }()
		r := bufio.NewReaderSize(engine, 64<<10)
		for {
			h, msg, err := readMessage(r)
			if err != nil {
				return
			}
			forward, err := open.answer(h.responseTo)
			if err != nil {
				logger.Error("wire guard: closing a connection whose replies are out of order", "error", err)
				return
			}
			if !forward {
				continue
			}
			if _, err := client.Write(msg); err != nil {
				return
			}
		}
	}()

	// Either side ending ends both.
	<-done
}
