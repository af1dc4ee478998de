/*
 * A file this start of urkv created (the data file, a cluster node's
 * cluster file), removed again when the start fails before it serves
 * anyone: a failed start leaves behind neither a new data file of --size
 * bytes nor a new cluster file.
 *
 * Design notes.
 *
 * States of struct urkv_new_file, and the function of each transition:
 *
 *   NOT CREATED --urkv_new_file_note (the path names a regular file that
 *                 did not exist before)--> CREATED (its device and inode)
 *   CREATED --urkv_new_file_remove--> NOT CREATED (unlinked if the path
 *                 still names that device and inode)
 *
 * Invariant: only the file this start created is removed.  A file that
 * was there before is never noted; one that no longer is the noted file
 * (renamed over by an update, replaced by someone) is kept.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "urkv.h"

void urkv_new_file_note(struct urkv_new_file *nf, const char *path, bool existed)
{
	struct stat st;

	nf->created = !existed && lstat(path, &st) == 0 && S_ISREG(st.st_mode);
	if (nf->created) {
		nf->dev = st.st_dev;
		nf->ino = st.st_ino;
	}
}

void urkv_new_file_remove(struct urkv_new_file *nf, const char *path, const char *what, bool quiet)
{
	struct stat st;

	if (!nf->created || lstat(path, &st) != 0 || st.st_dev != nf->dev || st.st_ino != nf->ino)
		return;
	if (unlink(path) != 0)
		fprintf(stderr, "urkv: cannot remove %s%s, which this failed start created: %s\n", what,
			path, strerror(errno));
	else if (!quiet)
		fprintf(stderr, "urkv: removed %s%s, which this failed start created\n", what, path);
	nf->created = false;
}
