; Inno Setup 6 (6.3 or later) script for Graver's Windows installer.
;
; First lay out the files on any machine (packaging/windows/make-dist does it and
; checks that every Source line below names a file it made), then on Windows:
;   iscc /DAppVersion=0.1.0 packaging\windows\graver.iss
; The installer is written to target\windows-installer\graver-VERSION-x64-setup.exe.
; /DDistDir=... points at another layout than target\windows-dist.
;
; Sign graver.exe and graver-writer.exe before running iscc, and the setup
; program after it (see packaging/windows/README.md).

#ifndef AppVersion
  #error Pass the version: iscc /DAppVersion=0.1.0 packaging\windows\graver.iss
#endif
#ifndef DistDir
  #define DistDir "..\..\target\windows-dist"
#endif

[Setup]
; Fixed for good: Windows finds an installed Graver by this id to upgrade or remove it.
AppId={{CADC9DCB-1172-4568-9A17-EC57D5F06DA6}
AppName=Graver
AppVersion={#AppVersion}
AppVerName=Graver {#AppVersion}
AppPublisher=The Graver developers
AppPublisherURL=https://github.com/graver-flasher/graver
AppSupportURL=https://github.com/graver-flasher/graver/issues
AppCopyright=Copyright (C) The Graver developers; licensed MIT OR Apache-2.0
DefaultDirName={autopf}\Graver
DefaultGroupName=Graver
DisableProgramGroupPage=yes
; 64-bit only: x64 Windows, and Windows 11 on Arm through its x64 emulation.
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
; Administrator rights, so Graver lands in Program Files. graver.exe asks UAC to
; start graver-writer.exe with administrator rights for every write; that program
; must sit where only administrators can change it. In a per-user folder
; (PrivilegesRequired=lowest) any program running as the user could replace it, and
; the next write's UAC prompt would elevate the replacement.
PrivilegesRequired=admin
SetupIconFile={#DistDir}\graver.ico
UninstallDisplayIcon={app}\graver.exe
UninstallDisplayName=Graver
OutputDir=..\..\target\windows-installer
OutputBaseFilename=graver-{#AppVersion}-x64-setup
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
; Closes a running Graver before replacing its files, and restarts it afterwards.
CloseApplications=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#DistDir}\graver.exe"; DestDir: "{app}"; Flags: ignoreversion
Source: "{#DistDir}\graver-writer.exe"; DestDir: "{app}"; Flags: ignoreversion
Source: "{#DistDir}\graver.ico"; DestDir: "{app}"; Flags: ignoreversion
Source: "{#DistDir}\README.txt"; DestDir: "{app}"; Flags: ignoreversion
Source: "{#DistDir}\LICENSE-MIT.txt"; DestDir: "{app}"; Flags: ignoreversion
Source: "{#DistDir}\LICENSE-APACHE.txt"; DestDir: "{app}"; Flags: ignoreversion

[Icons]
Name: "{autoprograms}\Graver"; Filename: "{app}\graver.exe"; IconFilename: "{app}\graver.ico"; Comment: "Write disk images to USB sticks and SD cards"
Name: "{autodesktop}\Graver"; Filename: "{app}\graver.exe"; IconFilename: "{app}\graver.ico"; Tasks: desktopicon

[Run]
; As the user who started the installer, not as the administrator it runs as: the
; window never runs elevated, only graver-writer.exe does, one write at a time.
Filename: "{app}\graver.exe"; Description: "{cm:LaunchProgram,Graver}"; Flags: nowait postinstall skipifsilent runasoriginaluser
