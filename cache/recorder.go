package cache

import (
	"io"
	"net/http"
)

// recorder is an http.ResponseWriter that notes the status and the body bytes of the
// response written through it. It passes ReadFrom on, so http.ServeContent over an
// *os.File still reaches the connection's sendfile path, and Unwrap and Flush, for
// http.ResponseController. The handler counts served bytes and tells the Gate what it
// sent (Served) with it.
type recorder struct {
	http.ResponseWriter
	status int
	n      int64
}

// newRecorder records what is written to w.
func newRecorder(w http.ResponseWriter) *recorder { return &recorder{ResponseWriter: w} }

// Status is the status sent, 0 while nothing is.
func (r *recorder) Status() int { return r.status }

// Code is the status sent, 200 while nothing is (what net/http sends then).
func (r *recorder) Code() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}

// Bytes is the number of body bytes written.
func (r *recorder) Bytes() int64 { return r.n }

// WriteHeader implements http.ResponseWriter.
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.n += int64(n)
	return n, err
}

// ReadFrom hands src to the underlying writer's ReadFrom (sendfile) when it has one.
func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{r.ResponseWriter}, src) // hides ReadFrom: no recursion
	}
	r.n += n
	return n, err
}

// Unwrap returns the underlying writer, for http.ResponseController.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Flush flushes the underlying writer if it can.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
