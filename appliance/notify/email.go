package notify

import (
	"context"
	"crypto/tls"
	"fmt"

	mail "github.com/wneessen/go-mail"

	"github.com/patchgate/patchgate/clock"
)

// mailer sends one recipient's emails through the relay, a new SMTP session each time
// (notifications are rare; a session kept open would only time out).
type mailer struct {
	smtp  SMTP
	to    string
	tls   *tls.Config
	clock clock.Clock
}

func (m mailer) send(ctx context.Context, ev Event) error {
	msg := mail.NewMsg()
	if err := msg.From(m.smtp.From); err != nil {
		return fmt.Errorf("email: from: %w", err)
	}
	if err := msg.To(m.to); err != nil {
		return fmt.Errorf("email: to: %w", err)
	}
	msg.Subject(ev.mailSubject())
	msg.SetDateWithValue(m.clock.Now())
	msg.SetMessageID()
	msg.SetGenHeader("X-Patchgate-Event", string(ev.Kind))
	msg.SetBodyString(mail.TypeTextPlain, ev.text())

	policy := mail.TLSMandatory
	if !m.smtp.StartTLS {
		policy = mail.NoTLS
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if m.tls != nil {
		tc = m.tls.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = m.smtp.Host
	}
	opts := []mail.Option{mail.WithPort(m.smtp.Port), mail.WithTLSPolicy(policy), mail.WithTLSConfig(tc),
		mail.WithTimeout(m.smtp.Timeout.D())}
	if m.smtp.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover),
			mail.WithUsername(m.smtp.Username), mail.WithPassword(m.smtp.Password.Value()))
	}
	c, err := mail.NewClient(m.smtp.Host, opts...)
	if err != nil {
		return fmt.Errorf("email: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("email to %s via %s:%d: %w", m.to, m.smtp.Host, m.smtp.Port, err)
	}
	return nil
}
