"""SMTP delivery with the standard library's smtplib (blocking, like the rest of the servicer's code; one
connection per attempt). STARTTLS is optional; the Message-ID is derived from the message's idempotency key,
so a resend carries the same Message-ID and mail systems and people can recognise it. A 4xx reply, a lost
connection or a timeout is transient; a 5xx reply (a refused recipient, a refused login) is permanent."""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

from wayline_orchestrator.connectors.model import Attempt, Message, SmtpConfig, Status

__all__ = ["email_message", "message_id", "smtp_attempt"]


def message_id(idempotency_key: str, from_address: str) -> str:
    """`<hex of SHA-256(key), 32 digits>@<the sender's domain>`: the same for every send of the message."""
    domain = parseaddr(from_address)[1].rpartition("@")[2] or "wayline.invalid"
    return f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}@{domain}>"


def email_message(config: SmtpConfig, message: Message) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = config.from_address
    mail["To"] = message.recipient.email
    mail["Subject"] = message.subject
    mail["Date"] = formatdate(localtime=False, usegmt=True)
    mail["Message-ID"] = message_id(message.idempotency_key, config.from_address)
    mail["Wayline-Idempotency-Key"] = message.idempotency_key
    if message.template_id:
        mail["Wayline-Template-Id"] = message.template_id
    if message.action_id:
        mail["Wayline-Action-Id"] = message.action_id
    if message.decision_id:
        mail["Wayline-Decision-Id"] = message.decision_id
    mail.set_content(message.body or "")
    return mail


def _reply(code: int, text: bytes | str) -> Attempt:
    said = text.decode(errors="replace") if isinstance(text, bytes) else text
    status = Status.PERMANENT if code >= 500 else Status.TRANSIENT
    return Attempt(status, code, f"SMTP {code}: {said}")


def smtp_attempt(config: SmtpConfig, mail: EmailMessage, timeout: float) -> Attempt:
    """Send `mail` once."""
    try:
        with smtplib.SMTP(config.host, config.port, timeout=timeout) as client:
            if config.starttls:
                client.starttls(context=ssl.create_default_context())
            if config.username:
                client.login(config.username, config.password)
            client.send_message(mail)
    except smtplib.SMTPRecipientsRefused as refused:
        code, text = next(iter(refused.recipients.values()))
        return _reply(code, text)
    except smtplib.SMTPNotSupportedError as unsupported:
        return Attempt(Status.PERMANENT, error=f"the server does not support it: {unsupported}")
    except smtplib.SMTPResponseException as error:
        return _reply(error.smtp_code, error.smtp_error)
    except ssl.SSLError as error:  # a certificate that does not verify will not verify on a retry
        return Attempt(Status.PERMANENT, error=f"TLS: {error}")
    except (smtplib.SMTPException, OSError) as error:  # lost connections, timeouts, refused connections
        return Attempt(Status.TRANSIENT, error=f"{type(error).__name__}: {error}")
    return Attempt(Status.DELIVERED, 250)
