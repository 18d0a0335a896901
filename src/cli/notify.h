/*
 * notify.h - systemd's notify protocol for a mount run as a service
 * (Type=notify); see notify.c. Everything is a no-op without NOTIFY_SOCKET.
 */
#ifndef ZERO_NOTIFY_H
#define ZERO_NOTIFY_H

struct fs;
struct notifier;

/*
 * The mount of FS at MNT answers: READY=1, then STATUS= every few seconds
 * from a thread of its own. Call after any fork. NULL when not under
 * systemd (or the thread could not start; READY was still sent).
 */
struct notifier *notify_ready(struct fs *fs, const char *mnt);
/* The mount goes down: STOPPING=1; stops and frees N (NULL ok). Before fs_free. */
void notify_stopping(struct notifier *n);

#endif /* ZERO_NOTIFY_H */
