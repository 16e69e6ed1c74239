#!/bin/sh
# check_docs.sh: every keyword of src/conf_tbl.h must appear in
# docs/supagate.conf.5 (as ".It Ic keyword") and, commented out, in
# conf/supagate.conf; mandoc -Tlint must be clean when installed.
srcdir=${srcdir:-.}
tbl=$srcdir/src/conf_tbl.h
man=$srcdir/docs/supagate.conf.5
conf=$srcdir/conf/supagate.conf
fail=0

for f in "$tbl" "$man" "$conf"; do
	if [ ! -r "$f" ]; then
		echo "check_docs: cannot read $f" >&2
		exit 1
	fi
done
kws=$(sed -n 's/^CONF_[VH]("\([a-z0-9-]*\)".*/\1/p' "$tbl")
if [ -z "$kws" ]; then
	echo "check_docs: no keywords found in $tbl" >&2
	exit 1
fi
for kw in $kws; do
	if ! grep -q "^\.It Ic $kw\( \|$\)" "$man"; then
		echo "check_docs: $kw is missing from $man" >&2
		fail=1
	fi
	if ! grep -q "^#$kw[ 	]" "$conf"; then
		echo "check_docs: $kw is missing from $conf" >&2
		fail=1
	fi
done
# and nothing documented that the table does not know
for kw in $(sed -n 's/^\.It Ic \([a-z0-9-]*\).*/\1/p' "$man"); do
	case " $(echo $kws) include " in
	*" $kw "*) ;;
	*)	echo "check_docs: $man documents unknown keyword $kw" >&2
		fail=1 ;;
	esac
done
if command -v mandoc >/dev/null 2>&1; then
	if ! mandoc -Tlint -Wwarning "$man" >&2; then
		echo "check_docs: mandoc -Tlint complains about $man" >&2
		fail=1
	fi
fi
exit $fail
