package haproxy

import "errors"

// Errors that Command and the methods built on it wrap. Check them with
// errors.Is. The wrapping error names the socket and, for responses, the
// command and HAProxy's response.
var (
	// ErrSocketMissing is returned when the admin socket path does not exist.
	ErrSocketMissing = errors.New("HAProxy admin socket not found")

	// ErrSocketPermission is returned when connecting to the admin socket is
	// denied by its file permissions.
	ErrSocketPermission = errors.New("permission denied on HAProxy admin socket")

	// ErrSocketRefused is returned when nothing listens on the socket path:
	// the socket file outlived its HAProxy, or the path is not a socket.
	ErrSocketRefused = errors.New("HAProxy admin socket refused the connection")

	// ErrLevelTooLow is returned when HAProxy returns "Permission denied"
	// because the stats socket has a level below the command's.
	ErrLevelTooLow = errors.New("HAProxy denied the command: the stats socket needs `level admin`")

	// ErrNoSuchBackend is returned when HAProxy's running configuration has
	// no backend of the given name.
	ErrNoSuchBackend = errors.New("no such backend in HAProxy's running configuration " +
		"(compare the name with haproxy.cfg)")

	// ErrNoSuchServer is returned when the backend has no server of the
	// given name.
	ErrNoSuchServer = errors.New("no such server in HAProxy's running configuration " +
		"(compare the name with haproxy.cfg)")

	// ErrUnknownCommand is returned when this HAProxy version does not know
	// the command.
	ErrUnknownCommand = errors.New("HAProxy does not know the command (HAProxy 2.6 or later is required)")

	// ErrUnexpectedResponse is returned when a command's response is not one of
	// those the command gives on success, for example a rejected address.
	ErrUnexpectedResponse = errors.New("unexpected response from HAProxy")
)
