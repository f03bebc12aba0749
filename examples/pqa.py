"""The paraphrased QA questions, written by hand for issue 19 (tasks.py
turns each into three items: gold first, middle and last).

Each question is asked in other words than its gold paragraph: tasks.py
checks that no run of three content words (words outside a stop list,
lower-cased) of the question occurs in the gold paragraph, and reports the
overlap per item in items.tsv (shared content words, longest shared run).
Each has a distractor paragraph holding a near-miss fact (another period,
date, count or name of the same kind) that does not contain the answer.

  gold, distractor   (file, a substring that picks the paragraph, how many
                     paragraphs from there make the document)
  answers            the accepted answers, the first one the gold target
                     whose log-likelihood is measured
  title              how the documents are titled in the prompt: the
                     file's name (licences) or the package's (copyright)

Files are Debian's: /usr/share/common-licenses (base-files) and
/usr/share/doc/PACKAGE/copyright of packages every Debian system has."""

L = "/usr/share/common-licenses/"
D = "/usr/share/doc/"

QUESTIONS = [
    dict(gold=(L + "GPL-3", "cure the violation prior to 30 days", 1),
         distractor=(L + "GPL-3", "prior to 60 days after the cessation", 1),
         question="Someone broke these terms for the first time and was warned about it by the owner. "
                  "How long after that warning do they have to put things right so that their permission "
                  "comes back for good?",
         answers=["30 days", "thirty days"]),
    dict(gold=(L + "GPL-3", "prior to 60 days after the cessation", 1),
         distractor=(L + "GPL-3", "cure the violation prior to 30 days", 1),
         question="Somebody stopped infringing and the owner never contacted them about it. After how long "
                  "without such a message does their permission return for good?",
         answers=["60 days", "sixty days"]),
    dict(gold=(L + "MPL-1.1", "fail to cure such breach within 30 days", 1),
         distractor=(L + "MPL-1.1", "upon 60 days notice from Participant", 1),
         question="Under the older Mozilla licence, once a licensee learns that they are not meeting its "
                  "conditions, what period do they get to put it right before the grant ends on its own?",
         answers=["30 days", "thirty days"]),
    dict(gold=(L + "MPL-1.1", "upon 60 days notice from Participant", 1),
         distractor=(L + "MPL-1.1", "fail to cure such breach within 30 days", 1),
         question="If you take a contributor to court saying their version violates a patent of yours, "
                  "how long after being told do you have to either settle on a fee or drop the lawsuit?",
         answers=["60 days", "sixty days"]),
    dict(gold=(L + "MPL-1.1", "must remain available for at least twelve (12) months", 1),
         distractor=(L + "GPL-3", "valid for at least three years and valid for as long as you offer spare parts", 1),
         question="When a changed file is offered for download over a network, what is the shortest time "
                  "it must stay obtainable after it first appeared?",
         answers=["twelve (12) months", "twelve months", "12 months"]),
    dict(gold=(L + "GPL-2", "b) Accompany it with a written offer, valid for at least three years", 1),
         distractor=(L + "MPL-1.1", "must remain available for at least twelve (12) months", 1),
         question="Under version two of the GNU licence for programs, how long must a promise to hand over "
                  "the sources later on stay good?",
         answers=["three years", "3 years"]),
    dict(gold=(L + "GFDL-1.3", "a Back-Cover Text may be at most 25 words", 1),
         distractor=(L + "GFDL-1.3", "If you publish printed copies (or copies in media", 1),
         question="Under the licence for manuals, how long may the passage printed on the rear of a book "
                  "be, counted in words?",
         answers=["25 words", "25", "twenty-five words"]),
    dict(gold=(L + "GFDL-1.3", "If you publish printed copies (or copies in media", 1),
         distractor=(L + "GFDL-1.3", "a Back-Cover Text may be at most 25 words", 1),
         question="Above what print run must a publisher put the required passages on the outside of the "
                  "book?",
         answers=["100", "more than 100", "one hundred"]),
    dict(gold=(L + "LGPL-2.1", "small inline functions (ten lines or less in length)", 1),
         distractor=(L + "LGPL-2.1", "c) Accompany the work with a written offer, valid for at least three years", 1),
         question="How short must the tiny routines be for a compiled module that uses them to escape the "
                  "rules for works based on the library?",
         answers=["ten lines", "10 lines"]),
    dict(gold=(L + "Apache-2.0", "Apache License Version 2.0, January 2004", 1),
         distractor=(L + "GPL-3", "GNU GENERAL PUBLIC LICENSE Version 3, 29 June 2007", 2),
         question="In which month and year did the Apache Software Foundation issue the second major "
                  "edition of its terms?",
         answers=["January 2004"]),
    dict(gold=(L + "GPL-2", "GNU GENERAL PUBLIC LICENSE Version 2, June 1991", 2),
         distractor=(L + "LGPL-2.1", "GNU LESSER GENERAL PUBLIC LICENSE Version 2.1, February 1999", 2),
         question="When did the FSF publish the second edition of its copyleft terms for programs?",
         answers=["June 1991"]),
    dict(gold=(L + "LGPL-2.1", "GNU LESSER GENERAL PUBLIC LICENSE Version 2.1, February 1999", 2),
         distractor=(L + "GPL-2", "GNU GENERAL PUBLIC LICENSE Version 2, June 1991", 2),
         question="In which month and year did the weaker copyleft licence for libraries reach its release "
                  "2.1?",
         answers=["February 1999"]),
    dict(gold=(L + "GFDL-1.3", "GNU Free Documentation License Version 1.3, 3 November 2008", 2),
         distractor=(L + "GFDL-1.2", "GNU Free Documentation License Version 1.2, November 2002", 2),
         question="On what exact day did the FSF put out release 1.3 of its terms for manuals and books?",
         answers=["3 November 2008", "November 3, 2008"]),
    dict(gold=(D + "zlib1g/copyright", "Files: * Copyright: 1995-2013 Jean-loup Gailly", 1),
         distractor=(D + "gzip/copyright", "Files: * Copyright: 1999-2022 Free Software Foundation", 1),
         question="Over which span of years do Gailly and Adler own the main code of the in-memory "
                  "compression library?",
         answers=["1995-2013", "1995 to 2013"]),
    dict(gold=(D + "libbz2-1.0/copyright", "Files: * Copyright: 1996-2010 Julian R Seward", 1),
         distractor=(D + "libxxhash0/copyright", "Files: * Copyright: 2012-2014 Yann Collet", 1),
         question="Who is named as the author of the block-sorting compressor's library?",
         answers=["Julian R Seward", "Julian Seward", "Seward"]),
    dict(gold=(D + "libxxhash0/copyright", "Files: * Copyright: 2012-2014 Yann Collet", 1),
         distractor=(D + "liblzma5/copyright", "Files: * Copyright: 2006-2018, Lasse Collin", 1),
         question="Who owns the main code of the very fast non-cryptographic hashing library?",
         answers=["Yann Collet", "Collet"]),
    dict(gold=(D + "tar/copyright", "was originally written by Graham Todd", 1),
         distractor=(D + "hostname/copyright", "This package was written by Peter Tobias", 1),
         question="Who first programmed the GNU archiving utility?",
         answers=["Graham Todd"]),
    dict(gold=(D + "hostname/copyright", "This package was written by Peter Tobias", 1),
         distractor=(D + "tar/copyright", "was originally written by Graham Todd", 1),
         question="Who created the Debian package of the tool that shows or sets the machine's network "
                  "name?",
         answers=["Peter Tobias"]),
    dict(gold=(D + "base-files/copyright", "This package was first put together by Bruce Perens", 1),
         distractor=(D + "mawk/copyright", "This package was put together by Chris Fearnley", 1),
         question="Who originally assembled Debian's bundle of miscellaneous base-system files?",
         answers=["Bruce Perens", "Perens"]),
    dict(gold=(D + "zlib1g/copyright", "The deflate format used by zlib was defined by Phil Katz", 1),
         distractor=(D + "gzip/copyright", "Files: * Copyright: 1999-2022 Free Software Foundation", 1),
         question="Who designed the compressed stream layout that the in-memory compression library "
                  "implements?",
         answers=["Phil Katz", "Katz"]),
    dict(gold=(D + "mawk/copyright", "Files: * Copyright: 1996, Michael D. Brennan", 1),
         distractor=(D + "sed/copyright", "Files: * doc/local.mk Copyright: 1989-2020", 1),
         question="Which person wrote the original code of Debian's default AWK interpreter?",
         answers=["Michael D. Brennan", "Michael Brennan", "Brennan"]),
    dict(gold=(D + "libpcre2-8-0/copyright", "Files: * Copyright: 1997-2022 University of Cambridge", 1),
         distractor=(D + "coreutils/copyright", "Files: * Copyright: (C) 1984-2008 Free Software Foundation", 1),
         question="Which institution owns the Perl-style pattern matching library's main code?",
         answers=["University of Cambridge", "Cambridge"]),
]
