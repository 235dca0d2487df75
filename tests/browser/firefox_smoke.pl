#!/usr/bin/perl
# The dashboard in Firefox: Debian's firefox-esr driven over Marionette by
# Debian's libfirefox-marionette-perl (Debian 12 packages no geckodriver, so
# Selenium cannot drive Firefox here). dashboard_test.py runs this against its
# wharfd once its own jobs exist:
#
#   firefox_smoke.pl URL TOKEN JOB_ID DESCRIPTION_REGEX STATUS
#
# Logs in with the token, finds the job's row with its description and AEM
# status, opens its details page, lists the Content page, and checks the jobs
# page does not scroll sideways on a narrow window (a second Firefox asked for
# 390 px; Firefox's narrowest window is 500 px, which is what it gets). Every wait has a deadline. Prints
# what it checked; exits 1 with the reason on the first failure.
use strict;
use warnings;
use Firefox::Marionette();

my ($url, $token, $job, $description, $status) = @ARGV;
die "usage: $0 URL TOKEN JOB_ID DESCRIPTION_REGEX STATUS\n" unless defined $status;

my $firefox;
sub fail {
    my ($why) = @_;
    print STDERR "firefox: FAILED: $why\n";
    $firefox->quit() if $firefox;
    exit 1;
}

# Polls `check` (which returns a true value when done) until `seconds` pass.
sub wait_for {
    my ($what, $seconds, $check) = @_;
    my $deadline = time + $seconds;
    while (1) {
        my $value = eval { $check->() };
        return $value if $value;
        fail("$what (after $seconds s)") if time > $deadline;
        select(undef, undef, undef, 0.1);
    }
}

sub js { my ($code) = @_; return $firefox->script($code) }

$firefox = Firefox::Marionette->new(width => 1280, height => 900)
    or fail('Firefox did not start');
my $version = $firefox->browser_version();
print "firefox: $version\n";

$firefox->go("$url/#/jobs");
wait_for('the login form', 30, sub { js("return !!document.getElementById('token') && document.getElementById('login').offsetParent !== null") });
$firefox->find_id('token')->type($token);
$firefox->find_selector('#login-form button[type=submit]')->click();
wait_for('login', 30, sub { js("return document.getElementById('top').offsetParent !== null") });
print "firefox: logged in\n";

my $row_js = "var r = document.querySelector('#jobs-table tr[data-job-id=\"$job\"]'); return r ? [r.getAttribute('data-status'), r.textContent] : null;";
my $row = wait_for("job $job in the list", 30, sub { js($row_js) });
fail("job $job shows status '$row->[0]', expected '$status'") unless $row->[0] eq $status;
fail("job ${job}'s row does not match /$description/: $row->[1]") unless $row->[1] =~ /$description/;
print "firefox: job $job listed as $row->[0] with its description\n";

$firefox->go("about:blank");
$firefox->go("$url/#/jobs/$job");
wait_for("the details of job $job", 30, sub {
    my $text = js("var e = document.getElementById('job-status'); return e ? e.textContent : ''");
    return $text =~ /\Q$status\E/;
});
print "firefox: details page shows $status\n";

$firefox->go("about:blank");
$firefox->go("$url/#/content?path=/content/dam");
wait_for('children on the Content page', 30, sub { js("return document.querySelectorAll('#children-table tbody tr[data-path]').length >= 3") });
print "firefox: content page lists children\n";

$firefox->quit();

# A narrow screen: resizing a running window needs Marionette's system access,
# so a second Firefox starts narrow (the session storage, and with it the
# login, does not carry over). It is given at least 500 px whatever it is asked.
$firefox = Firefox::Marionette->new(width => 390, height => 844)
    or fail('Firefox did not start at 390 px');
$firefox->go("$url/#/jobs");
wait_for('the login form at 390 px', 30, sub { js("return document.getElementById('login').offsetParent !== null") });
$firefox->find_id('token')->type($token);
$firefox->find_selector('#login-form button[type=submit]')->click();
wait_for('the jobs table at 390 px', 30, sub { js("return !!document.querySelector('#jobs-table tr[data-job-id]')") });
my $width = js("return window.innerWidth");
fail("the window is $width px wide, not narrow") if $width > 500;
wait_for('no sideways scroll at 390 px', 30, sub { js("return document.documentElement.scrollWidth <= window.innerWidth + 1") });
print "firefox: $width px without sideways scroll\n";

$firefox->quit();
print "firefox: ok\n";
exit 0;
